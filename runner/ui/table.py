"""The runs table: which runs a request asks for, in which order, and the columns to show."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from runner.store import RunPage, RunRecord
from runner.store.core import SqlRunStore
from runner.store.search import RunQuery

SORT_CAP = 2000  # runs read to sort by a column other than the start time (about 0.1 s)
MAX_COLUMNS = 8  # parameter and metric columns each; more do not fit a screen
SEARCH_PAGE = 1000  # the REST search's own largest page


class TableRequest(NamedTuple):
    """The table's query string, checked: sort column, direction, page."""

    query: RunQuery
    sort: str  # "start", "name", "status", "duration", "experiment", "params.K", "metrics.K"
    descending: bool
    page: int  # for column sorts (keyset tokens serve the start-time order)


class Table(NamedTuple):
    """One page of the table and what its links need."""

    runs: list[RunRecord]
    param_keys: list[str]
    metric_keys: list[str]
    more: int
    capped: bool
    next_token: str | None
    next_page: int | None
    sorted_among: int | None  # a column sort saw only this many of the matching runs


def load_table(store: SqlRunStore, request: TableRequest) -> Table:
    """The page ``request`` asks for; the start-time order pages with the store's tokens."""
    if request.sort == "start":
        newest = dataclasses.replace(request.query, order="newest")
        oldest = dataclasses.replace(request.query, order="oldest")
        page = store.search_runs(newest if request.descending else oldest)
        return _table(page.runs, page, None, None)
    return _column_sorted(store, request)


def _column_sorted(store: SqlRunStore, request: TableRequest) -> Table:
    found, capped = _matching(store, request.query)
    found.sort(key=sort_key(request.sort), reverse=request.descending)
    size = request.query.limit
    start = request.page * size
    runs = found[start : start + size]
    after = max(0, len(found) - start - len(runs))
    next_page = request.page + 1 if after else None
    empty = RunPage([], after, False, None)
    return _table(runs, empty, next_page, len(found) if capped else None)


def _matching(store: SqlRunStore, query: RunQuery) -> tuple[list[RunRecord], bool]:
    """Up to SORT_CAP matching runs (newest first) and whether more matched."""
    runs: list[RunRecord] = []
    token = None
    while len(runs) < SORT_CAP:
        limit = min(SEARCH_PAGE, SORT_CAP - len(runs))
        page = store.search_runs(dataclasses.replace(query, limit=limit, page_token=token))
        runs += page.runs
        if page.next_token is None:
            return runs, False
        token = page.next_token
    return runs, True


def _table(runs: list[RunRecord], page: RunPage, next_page: int | None, among: int | None) -> Table:
    return Table(
        runs=runs,
        param_keys=_keys(run.parameters for run in runs),
        metric_keys=_keys(run.metrics for run in runs),
        more=page.more,
        capped=page.capped,
        next_token=page.next_token,
        next_page=next_page,
        sorted_among=among,
    )


def _keys(mappings: Any) -> list[str]:
    seen: dict[str, None] = {}
    for mapping in mappings:
        seen.update(dict.fromkeys(mapping))
    return sorted(seen)[:MAX_COLUMNS]


def sort_key(column: str) -> Callable[[RunRecord], tuple[Any, ...]]:
    """How runs compare on ``column``; runs without a value sort last either way round."""
    if column.startswith("params."):
        name = column[len("params.") :]
        return lambda run: _text_or_number(run.parameters.get(name))
    if column.startswith("metrics."):
        name = column[len("metrics.") :]
        return lambda run: _present(run.metrics.get(name))
    plain: Mapping[str, Callable[[RunRecord], Any]] = {
        "name": lambda run: run.run_name,
        "status": lambda run: run.status.value,
        "experiment": lambda run: run.experiment,
        "duration": duration_seconds,
    }
    pick = plain.get(column, _start_time)
    return lambda run: _present(pick(run))


def _start_time(run: RunRecord) -> str:
    return run.start_time


def _present(value: Any) -> tuple[Any, ...]:
    return (0, value) if value is not None else (1,)


def _text_or_number(value: str | None) -> tuple[Any, ...]:
    """Numbers in numeric order before text in text order (``2`` before ``10``)."""
    if value is None:
        return (2,)
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, value)


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
