"""The runs table's filter box: text like ``params.alpha = 0.5 and metrics.loss < 0.3``, read
into the same RunQuery the REST search takes (one query path, one set of checks)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from runner.errors import RunnerError
from runner.store.search import MAX_TERMS, RunQuery

_TERM = re.compile(
    r"""\s*(?P<kind>params|tags|metrics|status)(?:\.(?P<key>`[^`]+`|[^\s<>=!`]+))?
        \s*(?P<op><=|>=|!=|=|<|>)
        \s*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"']+)
        \s*(?P<end>(?:and\b)|$)""",
    re.IGNORECASE | re.VERBOSE,
)


class FilterError(RunnerError):
    """A filter the runs table cannot read; the message says where and why."""

    code = "bad-filter"


@dataclass(frozen=True)
class Filters:
    """What a filter text asks for, ready to go into a RunQuery."""

    status: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: tuple[tuple[str, str, float], ...] = ()


def parse_filter(text: str) -> Filters:
    """The terms of ``text`` (joined by ``and``), or FilterError naming the part not understood."""
    status: str | None = None
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    metrics: list[tuple[str, str, float]] = []
    position, text = 0, text.strip()
    while position < len(text):
        found = _TERM.match(text, position)
        if found is None:
            raise FilterError(
                f"cannot read the filter from {text[position:][:40]!r}",
                hint="write terms like params.alpha = 0.5, tags.team = nlp, metrics.loss < 0.3,"
                " status = FINISHED, joined by and",
            )
        kind, key, op = found["kind"].lower(), _unquote(found["key"] or ""), found["op"]
        value = _unquote(found["value"])
        if kind == "metrics":
            metrics.append((_needs_key(kind, key), op, _number(key, value)))
        elif op != "=":
            raise FilterError(f"{kind}{'.' + key if key else ''}: only = compares text, not {op}")
        elif kind == "status":
            status = value.upper()
        else:
            (params if kind == "params" else tags)[_needs_key(kind, key)] = value
        position = found.end()
        if position >= len(text) and found["end"]:
            raise FilterError("the filter ends with 'and': a term must follow it")
    if len(params) + len(tags) + len(metrics) > MAX_TERMS:
        raise FilterError(f"a filter takes at most {MAX_TERMS} param, tag and metric terms")
    return Filters(status, params, tags, tuple(metrics))


def run_query(
    filters: Filters, experiment: str | None, status: str | None, limit: int, token: str | None
) -> RunQuery:
    """The store query of the table: the filter box, the experiment and status menus, a page."""
    return RunQuery(
        experiment=experiment,
        status=status or filters.status,
        params=filters.params,
        tags=filters.tags,
        metrics=filters.metrics,
        order="newest",
        limit=limit,
        page_token=token,
    )


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return re.sub(r"\\(.)", r"\1", text[1:-1]) if text[0] != "`" else text[1:-1]
    return text


def _needs_key(kind: str, key: str) -> str:
    if not key:
        raise FilterError(f"{kind} needs a key: {kind}.NAME")
    return key


def _number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FilterError(f"metrics.{key}: {value!r} is not a number") from None
    return number
