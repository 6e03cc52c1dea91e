"""The runs table: which runs a request asks for, in which order, and the columns to show."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, NamedTuple

from runner.store import RunRecord
from runner.store.core import SqlRunStore
from runner.store.search import RunQuery

MAX_COLUMNS = 8  # parameter and metric columns each; more do not fit a screen
# The table's sortable columns besides params.K, metrics.K and tags.K; the store orders them all.
PLAIN_COLUMNS = ("start", "name", "status", "duration", "experiment")


class TableRequest(NamedTuple):
    """The table's query string, checked: sort column and direction (the page token is in
    ``query``)."""

    query: RunQuery
    sort: str  # "start", "name", "status", "duration", "experiment", "params.K", "metrics.K"
    descending: bool


class Table(NamedTuple):
    """One page of the table and what its links need."""

    runs: list[RunRecord]
    param_keys: list[str]
    metric_keys: list[str]
    more: int
    capped: bool
    next_token: str | None


def load_table(store: SqlRunStore, request: TableRequest) -> Table:
    """The page ``request`` asks for, ordered in SQL by any column over all matching runs."""
    column = request.sort if _sortable(request.sort) else "start"  # else the default order
    ordered = dataclasses.replace(request.query, sort=column, ascending=not request.descending)
    page = store.search_runs(ordered)
    return Table(
        runs=page.runs,
        param_keys=_keys(run.parameters for run in page.runs),
        metric_keys=_keys(run.metrics for run in page.runs),
        more=page.more,
        capped=page.capped,
        next_token=page.next_token,
    )


def _sortable(column: str) -> bool:
    kind, dot, key = column.partition(".")
    return column in PLAIN_COLUMNS or bool(dot and key and kind in ("params", "metrics", "tags"))


def _keys(mappings: Any) -> list[str]:
    seen: dict[str, None] = {}
    for mapping in mappings:
        seen.update(dict.fromkeys(mapping))
    return sorted(seen)[:MAX_COLUMNS]


def duration_seconds(run: RunRecord) -> float | None:
    """Seconds from start to end; a live run's up to now."""
    start = _parse(run.start_time)
    end = _parse(run.end_time) if run.end_time else None
    if start is None:
        return None
    if end is None:
        return (
            None
            if run.status.is_terminal
            else datetime.now(start.tzinfo).timestamp() - (start.timestamp())
        )
    return (end - start).total_seconds()


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {rest:02d}s"
