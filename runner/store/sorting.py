"""Runs ordered by any column in SQL, runs without a value last, with keyset page tokens."""

from __future__ import annotations

from typing import Any, NamedTuple

from runner.errors import StoreError
from runner.store import RunPage, statements
from runner.store.database import Session
from runner.store.listing import MORE_CAP, Filter, records

# Run columns a search may order by, as SQL over ``runs``. Written into the SQL, so only these.
SORT_COLUMNS = {
    "name": "run_name",
    "status": "status",
    "end": "end_time",
    "duration": "end_time - start_time",  # NULL while a run has no end: such runs come last
    "experiment": "(SELECT name FROM experiments WHERE experiments.id = runs.experiment_id)",
}
# ``params.K``, ``metrics.K`` (the latest value) and ``tags.K``: the key is bound, never written.
KEYED = {
    "params": "(SELECT value FROM params WHERE params.run_id = runs.run_id AND params.key = ?)",
    "metrics": (
        "(SELECT value FROM latest_metrics"
        " WHERE latest_metrics.run_id = runs.run_id AND latest_metrics.key = ?)"
    ),
    "tags": "(SELECT value FROM tags WHERE tags.run_id = runs.run_id AND tags.key = ?)",
}


class SortValue(NamedTuple):
    """The SQL of a sort column and what it binds."""

    sql: str
    params: tuple[Any, ...]


def sort_value(column: str) -> SortValue:
    """The SQL value ``column`` orders by, or StoreError naming the columns there are."""
    if column in SORT_COLUMNS:
        return SortValue(SORT_COLUMNS[column], ())
    kind, dot, key = column.partition(".")
    if dot and key and kind in KEYED:
        return SortValue(KEYED[kind], (key,))
    known = ", ".join(["start", *SORT_COLUMNS])
    raise StoreError(
        f"cannot sort by {column!r}; expected one of {known}, params.KEY, metrics.KEY or tags.KEY"
    )


def sorted_page(
    session: Session,
    where: Filter,
    column: str,
    ascending: bool,
    limit: int,
    token: str | None,
) -> RunPage:
    """One page of the runs ``where`` matches, ordered by ``column``, after the run ``token``."""
    value = sort_value(column)
    inner = (
        f"SELECT {', '.join(statements.RECORD_COLUMNS)}, {{tiebreak}} AS tiebreak,"
        f" {value.sql} AS sort_value FROM runs{where.where()}"
    )
    params = (*value.params, *where.params)
    after = _after(session, value, ascending, token)
    direction = "" if ascending else " DESC"
    order = f" ORDER BY sort_value IS NULL, sort_value{direction}, run_id{direction}"
    sql = f"SELECT * FROM ({inner}) AS sorted{after.where()}"
    found = session.rows(sql + order + " LIMIT ?", (*params, *after.params, limit))
    more, capped = _more(session, sql, (*params, *after.params), len(found), limit)
    runs = records(session, [row[:-1] for row in found])
    return RunPage(runs, more, capped, runs[-1].run_id if more and runs else None)


def _after(session: Session, value: SortValue, ascending: bool, token: str | None) -> Filter:
    """The runs after the run ``token`` in this order: ties go by run id, NULLs come last."""
    if token is None:
        return Filter()
    row = session.one(f"SELECT {value.sql} FROM runs WHERE run_id = ?", (*value.params, token))
    if row is None:
        raise StoreError(
            f"page token {token!r} names no run in this store",
            hint="use the token printed with the previous page",
        )
    beyond = ">" if ascending else "<"
    if row[0] is None:
        return Filter((f"sort_value IS NULL AND run_id {beyond} ?",), (token,))
    term = (
        f"(sort_value IS NULL OR sort_value {beyond} ? OR (sort_value = ? AND run_id {beyond} ?))"
    )
    return Filter((term,), (row[0], row[0], token))


def _more(
    session: Session, sql: str, params: tuple[Any, ...], shown: int, limit: int
) -> tuple[int, bool]:
    """(runs after the ``shown`` ones, whether that count stopped at MORE_CAP)."""
    if shown < limit:
        return 0, False  # a short page is the last one
    counted = f"SELECT count(*) FROM ({sql} LIMIT ?) AS counted"
    row = session.one(counted, (*params, limit + MORE_CAP + 1))
    more = (int(row[0]) if row else 0) - shown
    return min(more, MORE_CAP), more > MORE_CAP
