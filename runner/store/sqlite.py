"""The store over the stdlib sqlite3 module: the CLI need not import SQLAlchemy."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.errors import StoreError
from runner.store import records
from runner.store.core import SqlRunStore
from runner.store.database import SQLITE, Session, transaction
from runner.store.migrate import ensure_sqlite_schema, not_a_store

# INSERT ... ON CONFLICT DO UPDATE (upserts) came in SQLite 3.24.
MIN_SQLITE = (3, 24, 0)


class SqliteDatabase:
    """One SQLite file through a single connection, shared by the process's threads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.RLock()
        self._conn = self._connect()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        with self._lock, self._errors(), transaction(self._conn, SQLITE, write=write) as session:
            yield session

    def migrate(self) -> None:
        with self._lock, self._errors():
            ensure_sqlite_schema(self._conn, self._path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _connect(self) -> sqlite3.Connection:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            found = sqlite3.sqlite_version
            raise StoreError(f"the tracking store needs SQLite 3.24 or newer, not {found}")
        try:
            # isolation_level=None: the module must not BEGIN on its own; transaction() does.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in records.SQLITE_PRAGMAS:
                conn.execute(pragma)
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise not_a_store(self._path, exc) from exc
            raise StoreError(
                f"cannot open the tracking store {self._path}: {exc}",
                hint="check that its directory exists and is writable",
            ) from exc
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"tracking store {self._path}: {exc}") from exc


class SqliteStore(SqlRunStore):
    """Runs, params, tags and metrics in one SQLite file, through the stdlib sqlite3 module."""

    def __init__(self, path: Path) -> None:
        db = SqliteDatabase(path)
        db.migrate()
        super().__init__(db)
