"""Request bodies read into store values, each wrong field named with its reason."""

from __future__ import annotations

from typing import Any

from runner.errors import StoreError
from runner.server.http import (
    BadRequest,
    each,
    field,
    integer,
    number,
    optional,
    string_map,
    typed,
)
from runner.store import Metric, NewRun, sorting
from runner.store.keyed import MAX_KEY as MAX_WRITE_KEY
from runner.store.keyed import Batch
from runner.store.records import MAX_KEY, now_ms
from runner.store.search import METRIC_OPS, RunQuery

EXTERNAL_ENVIRONMENT = {"manager": "external"}  # a run whose environment runner did not build
MAX_PAGE = 10_000  # runs in one answer (`runner runs list --limit` through a server)


def new_run(body: dict[str, Any]) -> NewRun:
    """What ``POST /api/runs`` creates."""
    return NewRun(
        experiment=field(body, "experiment", str),
        entry_point=optional(body, "entry_point", str) or "main",
        command=optional(body, "command", str) or "",
        backend=optional(body, "backend", str) or "external",
        parameters=string_map(body, "parameters"),
        source=optional(body, "source", dict) or {},
        environment=optional(body, "environment", dict) or EXTERNAL_ENVIRONMENT,
        run_name=optional(body, "run_name", str),
        tags=string_map(body, "tags"),
        parent_run_id=optional(body, "parent_run_id", str),
        runner_pid=optional(body, "runner_pid", int),
        runner_host=optional(body, "runner_host", str),
        runner_start=optional(body, "runner_start", float),
    )


def write_key(body: dict[str, Any], name: str = "key") -> str | None:
    key = optional(body, name, str)
    if key is not None and not 0 < len(key) <= MAX_WRITE_KEY:
        raise BadRequest(name, f"must be 1 to {MAX_WRITE_KEY} characters")
    return key


def metric(item: Any, label: str) -> Metric:
    """``{"key", "value", "step"?, "timestamp"?}``; the value may be "NaN" or "Infinity"."""
    item = typed(item, dict, label)
    key = metric_key(field(item, "key", str, where=f"{label}."), f"{label}.key")
    value = number(item.get("value"), f"{label}.value") if "value" in item else None
    if value is None:
        raise BadRequest(f"{label}.value", "is required")
    step = integer(item.get("step", 0), f"{label}.step")
    timestamp = integer(item.get("timestamp", now_ms()), f"{label}.timestamp")
    return (key, value, step, timestamp)


def metric_key(key: str, label: str) -> str:
    if not 0 < len(key) <= MAX_KEY:
        raise BadRequest(label, f"must be 1 to {MAX_KEY} characters")
    return key


def batch(body: dict[str, Any]) -> Batch:
    """``{"metrics": [...], "params": {...}, "tags": {...}}``, each part optional."""
    metrics = each(optional(body, "metrics", list) or [], "metrics", metric)
    params = string_map(body, "params")
    tags = string_map(body, "tags")
    for label, mapping in (("params", params), ("tags", tags)):
        for key in mapping:
            metric_key(key, f"{label}.{key[:40]}")
    return Batch(metrics, params, tags)


def run_query(body: dict[str, Any]) -> RunQuery:
    """``POST /api/runs/search``: filters, order (or a ``sort`` column, ``ascending``), limit,
    page token."""
    order = optional(body, "order", str) or "newest"
    if order not in ("newest", "oldest"):
        raise BadRequest("order", "must be newest or oldest")
    sort = optional(body, "sort", str)
    if sort not in (None, "start"):
        try:
            sorting.sort_value(sort)
        except StoreError as exc:
            raise BadRequest("sort", exc.message) from None
    return RunQuery(
        experiment=optional(body, "experiment", str),
        status=optional(body, "status", str),
        params=string_map(body, "params"),
        tags=string_map(body, "tags"),
        metrics=each(optional(body, "metrics", list) or [], "metrics", _metric_filter),
        order="newest" if order == "newest" else "oldest",
        limit=integer(body.get("limit", 100), "limit", low=0, high=MAX_PAGE),
        page_token=optional(body, "page_token", str),
        sort=sort,
        ascending=bool(optional(body, "ascending", bool)),
    )


def _metric_filter(item: Any, label: str) -> tuple[str, str, float]:
    item = typed(item, dict, label)
    op = field(item, "op", str, where=f"{label}.")
    if op not in METRIC_OPS:
        raise BadRequest(f"{label}.op", f"must be one of {' '.join(METRIC_OPS)}")
    return (field(item, "key", str, where=f"{label}."), op, number(item.get("value"), label))


def journal_record(record: Any, label: str) -> tuple[str, Batch]:
    """One journal record (``runner_tracking``'s format) with its unique ``id``."""
    record = typed(record, dict, label)
    record_id = field(record, "id", str, where=f"{label}.")
    if not 0 < len(record_id) <= MAX_WRITE_KEY:
        raise BadRequest(f"{label}.id", f"must be 1 to {MAX_WRITE_KEY} characters")
    kind = field(record, "t", str, where=f"{label}.")
    if kind == "metric":
        timestamp = record.get("ts", now_ms())
        item = {**record, "timestamp": timestamp}
        return record_id, Batch(metrics=[metric(item, label)])
    if kind in ("param", "tag"):
        key = metric_key(field(record, "key", str, where=f"{label}."), f"{label}.key")
        value = field(record, "value", str, where=f"{label}.")
        one = {key: value}
        return record_id, Batch(params=one) if kind == "param" else Batch(tags=one)
    raise BadRequest(f"{label}.t", f"unknown record kind {kind!r}: expected metric, param or tag")
