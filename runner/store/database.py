"""The connection interface the store runs its statements through: a dialect and a session."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

Row = tuple[Any, ...]


class Dialect(NamedTuple):
    """What differs between the databases the store speaks to (the SQL itself does not)."""

    placeholder: str  # what the driver wants in place of the statements' ``?``
    tiebreak: str  # orders runs that started in the same millisecond
    lock_row: str  # appended to the SELECT that checks a run before a write changes it
    begin_read: str | None  # issued to open a transaction, if the driver does not
    begin_write: str | None

    def sql(self, statement: str) -> str:
        return _translate(statement, self.placeholder, self.tiebreak)


# A write transaction takes SQLite's write lock up front: a deferred one that later writes can
# fail with SQLITE_BUSY at once, whatever busy_timeout says. Reads see one consistent snapshot.
SQLITE = Dialect("?", "rowid", "", "BEGIN", "BEGIN IMMEDIATE")
# FOR UPDATE serialises the writers of one run; psycopg opens transactions itself.
POSTGRESQL = Dialect("%s", "run_id", " FOR UPDATE", None, None)


@functools.cache
def _translate(statement: str, placeholder: str, tiebreak: str) -> str:
    statement = statement.format(tiebreak=tiebreak)
    if placeholder == "?":
        return statement
    # The statements hold no '?' or '%' inside literals, so this rewrite is exact.
    return statement.replace("%", "%%").replace("?", placeholder)


class Cursor(Protocol):
    """The part of a DB-API 2.0 cursor the store uses."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any], /) -> object: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def close(self) -> None: ...


class Connection(Protocol):
    """The part of a DB-API 2.0 connection the store uses."""

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class Session:
    """Statements inside one transaction, with the dialect's placeholders and tiebreak."""

    def __init__(self, conn: Connection, dialect: Dialect, *, write: bool) -> None:
        self.dialect = dialect
        self.write = write
        self._conn = conn

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        with self._cursor(statement, params) as cursor:
            return cursor.rowcount

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with contextlib.closing(self._conn.cursor()) as cursor:
                cursor.executemany(self.dialect.sql(statement), rows)

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._cursor(statement, params) as cursor:
            return [tuple(row) for row in cursor.fetchall()]

    def one(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        with self._cursor(statement, params) as cursor:
            row = cursor.fetchone()
            return None if row is None else tuple(row)

    @contextlib.contextmanager
    def _cursor(self, statement: str, params: Sequence[Any]) -> Iterator[Cursor]:
        cursor: Cursor = self._conn.cursor()
        try:
            cursor.execute(self.dialect.sql(statement), tuple(params))
            yield cursor
        finally:
            cursor.close()


@contextlib.contextmanager
def transaction(conn: Connection, dialect: Dialect, *, write: bool) -> Iterator[Session]:
    """One transaction on ``conn``: committed when the block ends, rolled back if it raises."""
    session = Session(conn, dialect, write=write)
    try:
        begin = dialect.begin_write if write else dialect.begin_read
        if begin:
            session.execute(begin)
        yield session
        conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # the error that got us here is the one to report
            conn.rollback()
        raise


class Database(Protocol):
    """Transactions on one database; both store implementations are one of these."""

    def transaction(self, *, write: bool) -> AbstractContextManager[Session]: ...

    def close(self) -> None: ...
