"""Searching runs: filters on status, experiment, params, tags and latest metrics, in pages."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from runner.errors import StoreError
from runner.store import RunPage, sorting, statements
from runner.store.database import Session
from runner.store.listing import Filter, check_filter, more_after, records, run_filter, token_cursor

# Comparisons a metric filter may use; written into the SQL, so only these.
METRIC_OPS = ("<", "<=", "=", "!=", ">=", ">")
MAX_TERMS = 20


@dataclass(frozen=True)
class RunQuery:
    """Which runs, in which order, how many, after which page token."""

    experiment: str | None = None
    status: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Sequence[tuple[str, str, float]] = ()  # (key, one of METRIC_OPS, value)
    order: Literal["newest", "oldest"] = "newest"
    limit: int = 100
    page_token: str | None = None
    # A column to order by instead of the start time (see ``sorting.SORT_COLUMNS``, or
    # ``params.K``, ``metrics.K``, ``tags.K``); runs without a value come last either way.
    sort: str | None = None
    ascending: bool = False


def check_query(query: RunQuery) -> None:
    """Refuse what the SQL must never see: unknown operators, orders, too many terms."""
    check_filter(query.status)
    if query.order not in ("newest", "oldest"):
        raise StoreError(f"unknown order {query.order!r}; expected newest or oldest")
    if len(query.params) + len(query.tags) + len(query.metrics) > MAX_TERMS:
        raise StoreError(f"a search takes at most {MAX_TERMS} param, tag and metric filters")
    for key, op, _value in query.metrics:
        if op not in METRIC_OPS:
            raise StoreError(f"metric filter {key!r}: unknown comparison {op!r}")
    if query.limit < 0:
        raise StoreError(f"the run limit must be zero or more, not {query.limit}")
    if query.sort not in (None, "start"):
        sorting.sort_value(query.sort)  # refuses an unknown column


def search(session: Session, query: RunQuery) -> RunPage:
    """One page of the runs ``query`` matches."""
    where = _filter(session, query)
    if where is None:
        return RunPage([], 0, False, None)
    if query.sort is not None and query.sort != "start":
        return sorting.sorted_page(
            session, where, query.sort, query.ascending, query.limit, query.page_token
        )
    if query.sort == "start":
        query = dataclasses.replace(query, order="oldest" if query.ascending else "newest")
    return _by_start(session, where, query)


def _by_start(session: Session, where: Filter, query: RunQuery) -> RunPage:
    """A page in start-time order, which the runs' start-time index serves."""
    cursor = token_cursor(session, query.page_token)
    if cursor is not None:
        after = statements.AFTER_CURSOR if query.order == "newest" else statements.BEFORE_CURSOR
        where = Filter((*where.terms, after), (*where.params, *cursor))
    order = statements.NEWEST_FIRST if query.order == "newest" else statements.OLDEST_FIRST
    sql = statements.SELECT_RECORD + where.where() + order + " LIMIT ?"
    found = session.rows(sql, (*where.params, query.limit))
    more, capped = more_after(session, where, len(found), query.limit)
    runs = records(session, found)
    return RunPage(runs, more, capped, runs[-1].run_id if more and runs else None)


def _filter(session: Session, query: RunQuery) -> Filter | None:
    status = check_filter(query.status)
    where = run_filter(session, query.experiment, status)
    if where is None:
        return None
    terms, params = list(where.terms), list(where.params)
    for table, values in (("params", query.params), ("tags", query.tags)):
        for key, value in values.items():
            terms.append(statements.WITH_VALUE.format(table=table))
            params += [key, value[: statements.PREFIX_LENGTH], value]
    for key, op, number in query.metrics:
        terms.append(statements.WITH_METRIC.format(op=op))
        params += [key, number]
    return Filter(tuple(terms), tuple(params))
