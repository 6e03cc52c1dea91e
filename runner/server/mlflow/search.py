"""MLflow's ``search_runs`` filter and order-by strings, evaluated over run records.

Supported: clauses joined by ``AND``, each ``<entity>.<key> <op> <value>`` where entity is
``metrics``, ``params``, ``tags`` or ``attributes`` (keys may be quoted with backticks or double
quotes), ops ``= != < <= > >=`` (numbers and strings), ``LIKE`` / ``ILIKE`` (strings) and
``IN`` / ``NOT IN`` (a parenthesised list of strings).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.server.mlflow import protocol as p
from runner.server.mlflow.entities import millis, visible_tags
from runner.store import RunRecord

Predicate = Callable[[RunRecord], bool]
_ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ATTRIBUTES = {"status", "run_name", "run_id", "start_time", "end_time", "user_id"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>[A-Za-z_]\w*\.(?:`[^`]+`|"[^"]+"|[\w.\-/]+))
      | (?P<bare>[A-Za-z_]\w*)
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<string>'(?:[^']|'')*'|"(?:[^"])*")
      | (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
      | (?P<list>\((?:[^()'"]|'[^']*'|"[^"]*")*\))
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    op: str
    value: Any


def like_pattern(value: str, *, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE (``%`` any run, ``_`` one character) as a regular expression."""
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def parse_filter(text: str) -> list[Clause]:
    """The clauses of a filter string, or an INVALID_PARAMETER_VALUE naming what is wrong."""
    tokens = _tokens(text)
    clauses: list[Clause] = []
    while tokens:
        clauses.append(_clause(tokens, text))
        if tokens:
            joiner = tokens.pop(0)
            if joiner != ("bare", "AND"):
                raise _bad(text, f"expected AND between clauses, found {joiner[1]!r}")
    return clauses


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _bad(text, f"cannot read it from {text[position:].strip()[:40]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        found.append((kind, value.upper() if kind == "bare" else value))
        position = match.end()
    return found


def _clause(tokens: list[tuple[str, str]], text: str) -> Clause:
    kind, name = tokens.pop(0)
    if kind == "bare" and name.lower() in _ATTRIBUTES:
        entity, key = "attributes", name.lower()
    elif kind == "ident":
        prefix, _, key = name.partition(".")
        entity = _ENTITIES.get(prefix.lower(), "")
        key = key[1:-1] if key[:1] in ("`", '"') else key
        if not entity:
            raise _bad(
                text, f"unknown entity {prefix!r} (use metrics., params., tags., attributes.)"
            )
    else:
        raise _bad(text, f"expected an identifier such as metrics.rmse, found {name!r}")
    op = _operator(tokens, text)
    if not tokens:
        raise _bad(text, f"{name} {op} has no value")
    value_kind, value = tokens.pop(0)
    return Clause(entity, key, op, _value(value_kind, value, op, text))


def _operator(tokens: list[tuple[str, str]], text: str) -> str:
    if not tokens:
        raise _bad(text, "a comparison has no operator")
    kind, op = tokens.pop(0)
    if kind == "bare" and op == "NOT" and tokens and tokens[0] == ("bare", "IN"):
        tokens.pop(0)
        return "NOT IN"
    if kind == "op" or (kind == "bare" and op in ("LIKE", "ILIKE", "IN")):
        return op
    raise _bad(text, f"unknown operator {op!r}")


def _value(kind: str, value: str, op: str, text: str) -> Any:
    if op in ("IN", "NOT IN"):
        if kind != "list":
            raise _bad(text, f"{op} needs a parenthesised list of strings")
        return {_unquote(item.strip()) for item in re.findall(r"'[^']*'|\"[^\"]*\"", value)}
    if kind == "string":
        return _unquote(value)
    if kind == "number":
        return float(value)
    raise _bad(text, f"expected a quoted string or a number, found {value!r}")


def _unquote(value: str) -> str:
    return value[1:-1].replace("''", "'") if value[:1] == "'" else value[1:-1]


def _bad(text: str, reason: str) -> p.MlflowError:
    return p.invalid("filter", f"{reason} in {text!r}")


def matcher(clauses: list[Clause]) -> Predicate:
    checks = [_check(clause) for clause in clauses]
    return lambda record: all(check(record) for check in checks)


def _check(clause: Clause) -> Predicate:
    compare = _comparison(clause.op, clause.value)
    return lambda record: (
        (found := field_value(record, clause.entity, clause.key)) is not None and (compare(found))
    )


def field_value(record: RunRecord, entity: str, key: str) -> Any:
    """What a run has for ``entity.key`` (None when it has nothing)."""
    if entity == "metrics":
        if key not in record.metrics:
            return None
        value = record.metrics[key]
        return math.nan if value is None else value  # the store keeps NaN as None
    if entity == "params":
        return record.parameters.get(key)
    if entity == "tags":
        return visible_tags(record).get(key)
    if key in ("start_time", "end_time"):
        return millis(getattr(record, key))
    if key == "status":
        return record.status.value
    if key == "user_id":
        return record.tags.get("mlflow.user", "")
    return getattr(record, key, None)


def _comparison(op: str, expected: Any) -> Callable[[Any], bool]:
    if op in ("IN", "NOT IN"):
        return (lambda v: v in expected) if op == "IN" else (lambda v: v not in expected)
    if op in ("LIKE", "ILIKE"):
        pattern = like_pattern(str(expected), ignore_case=op == "ILIKE")
        return lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None
    return functools.partial(_compare, op, expected)


def _compare(op: str, expected: Any, found: Any) -> bool:
    if isinstance(expected, float) and isinstance(found, str):
        try:
            found = float(found)
        except ValueError:
            return False
    if isinstance(expected, str) and not isinstance(found, str):
        found = str(found)
    try:
        return bool(
            {
                "=": found == expected,
                "!=": found != expected,
                "<": found < expected,
                "<=": found <= expected,
                ">": found > expected,
                ">=": found >= expected,
            }[op]
        )
    except TypeError:
        return False


# -- ordering -----------------------------------------------------------------------------

_ORDER = re.compile(
    r"^\s*([A-Za-z_]\w*)(?:\.(`[^`]+`|\"[^\"]+\"|[\w.\-/ ]+?))?\s*(ASC|DESC)?\s*$", re.IGNORECASE
)


def sort_runs(records: list[RunRecord], order_by: list[str]) -> list[RunRecord]:
    """Sorted as MLflow does: by each ``order_by`` term, then newest first; missing values last."""
    ordered = sorted(records, key=lambda r: (millis(r.start_time) or 0, r.run_id), reverse=True)
    for term in reversed(order_by):
        entity, key, descending = _order_term(term)
        present = [r for r in ordered if field_value(r, entity, key) is not None]
        missing = [r for r in ordered if field_value(r, entity, key) is None]
        present.sort(key=lambda r: _sortable(field_value(r, entity, key)), reverse=descending)
        ordered = present + missing
    return ordered


def _order_term(term: str) -> tuple[str, str, bool]:
    match = _ORDER.match(term)
    if match is None:
        raise p.invalid("order_by", f"cannot read {term!r}")
    first, key, direction = match.groups()
    if key is None:
        entity, key = "attributes", first
    else:
        entity = _ENTITIES.get(first.lower(), "")
        key = key[1:-1] if key[:1] in ("`", '"') else key
    if not entity or (entity == "attributes" and key not in _ATTRIBUTES):
        raise p.invalid("order_by", f"cannot order by {term!r}")
    return entity, key, (direction or "ASC").upper() == "DESC"


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, float) and math.isnan(value):
        return (1, 0.0)  # NaN after every number, as MLflow sorts it
    return (0, value)
