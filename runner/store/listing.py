"""Reading runs a page at a time: filters, keyset cursors, bounded counts, children in chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from runner.errors import StoreError
from runner.store import RunRecord, statements
from runner.store.database import Row, Session
from runner.store.records import CHUNK, KeyValue, chunks, parse_status
from runner.store.rows import CHILD_TABLES, run_records

# "N more" is counted up to this many: counting every run of a million-run filter costs more
# than reading the page.
MORE_CAP = 10_000
PAGE = CHUNK  # runs per read of iter_runs
# (start_time, tiebreak) of the last run shown: the next page starts strictly after it.
Cursor = tuple[int, Any]


class Filter(NamedTuple):
    """``WHERE`` terms over ``runs`` and their parameters, in order."""

    terms: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()

    def after(self, cursor: Cursor | None) -> Filter:
        if cursor is None:
            return self
        return Filter((*self.terms, statements.AFTER_CURSOR), (*self.params, *cursor))

    def where(self) -> str:
        return " WHERE " + " AND ".join(self.terms) if self.terms else ""


def check_filter(status: str | None) -> str | None:
    """The status value to filter on (None for all), refusing unknown ones."""
    return None if status is None else parse_status(status).value


def run_filter(session: Session, experiment: str | None, status: str | None) -> Filter | None:
    """The filter for these criteria; None when no run can match (an unknown experiment)."""
    found = Filter()
    if status is not None:
        found = Filter(("status = ?",), (status,))
    if experiment is None:
        return found
    row = session.one(statements.FIND_EXPERIMENT, (experiment,))
    if row is None:
        return None
    return Filter((*found.terms, "experiment_id = ?"), (*found.params, row[0]))


def token_cursor(session: Session, token: str | None) -> Cursor | None:
    """Where the page after ``token`` (the id of the last run shown) starts."""
    if token is None:
        return None
    row = session.one(statements.CURSOR_OF_RUN, (token,))
    if row is None:
        raise StoreError(
            f"page token {token!r} names no run in this store",
            hint="use the token printed with the previous page",
        )
    return (row[0], row[1])


def cursor_of(row: Row) -> Cursor:
    return (row[4], row[-1])  # start_time and the tiebreak column


def page(session: Session, where: Filter, limit: int) -> list[Row]:
    query = statements.SELECT_RECORD + where.where() + statements.NEWEST_FIRST + " LIMIT ?"
    return session.rows(query, (*where.params, limit))


def count_up_to(session: Session, where: Filter, cap: int) -> int:
    """How many runs match, counting no further than ``cap``."""
    query = statements.COUNT_UP_TO.format(where=where.where())
    row = session.one(query, (*where.params, cap))
    return int(row[0]) if row else 0


def more_after(session: Session, where: Filter, shown: int, limit: int) -> tuple[int, bool]:
    """(runs after the ``shown`` ones, whether that count stopped at MORE_CAP)."""
    if shown < limit:
        return 0, False  # a short page is the last one
    more = count_up_to(session, where, limit + MORE_CAP + 1) - shown
    return min(more, MORE_CAP), more > MORE_CAP


def records(session: Session, rows: Sequence[Row]) -> list[RunRecord]:
    """The run records of ``rows``, with experiment names, params, tags and latest metrics."""
    ids = [row[0] for row in rows]
    children = {field: _children(session, table, ids) for field, table in CHILD_TABLES.items()}
    return run_records(rows, _experiment_names(session, {row[1] for row in rows}), children)


def _children(session: Session, table: str, ids: Sequence[str]) -> list[KeyValue]:
    found: list[KeyValue] = []
    for chunk in chunks(ids):
        marks = ", ".join("?" * len(chunk))
        query = statements.CHILDREN.format(table=table, marks=marks)
        found.extend((run_id, key, value) for run_id, key, value in session.rows(query, chunk))
    return found


def _experiment_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    query = statements.EXPERIMENTS_BY_ID.format(marks=", ".join("?" * len(ids)))
    return {int(found): str(name) for found, name in session.rows(query, sorted(ids))}
