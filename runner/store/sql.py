"""The store over SQLAlchemy's engine and pool: PostgreSQL, or SQLite when asked for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from runner.errors import StoreError
from runner.redact import redact_uri
from runner.store.core import SqlRunStore
from runner.store.database import POSTGRESQL, SQLITE, Dialect, Session, transaction
from runner.store.engine import make_engine
from runner.store.migrate import ensure_engine_schema, sqlite_path

_DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL}
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def dialect_of(engine: Engine) -> Dialect:
    """The store dialect of ``engine``'s database and driver; StoreError for any other."""
    known = _DIALECTS.get(engine.dialect.name)
    placeholder = _PLACEHOLDERS.get(engine.dialect.paramstyle)
    if known is None or placeholder is None:
        raise StoreError(
            f"the tracking store runs on SQLite or PostgreSQL, not {engine.dialect.name} "
            f"(driver {engine.dialect.driver}, paramstyle {engine.dialect.paramstyle})"
        )
    return known._replace(placeholder=placeholder)


class EngineDatabase:
    """Transactions on DB-API connections from the engine's pool (one per transaction)."""

    def __init__(self, engine: Engine, where: str) -> None:
        self.dialect = dialect_of(engine)
        self._engine = engine
        self._where = where
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        with self._errors():
            conn = self._engine.raw_connection()
            try:
                with transaction(conn, self.dialect, write=write) as session:
                    yield session
            finally:
                conn.close()  # back to the pool

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, self._driver_error) as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreError(f"tracking store {self._where}: {cause}") from exc


class SqlStore(SqlRunStore):
    """Runs, params, tags and metrics in PostgreSQL (or SQLite), through SQLAlchemy's pool."""

    def __init__(self, uri: str) -> None:
        engine = make_engine(uri)
        db = EngineDatabase(engine, redact_uri(uri))
        ensure_engine_schema(engine, sqlite_path(uri))
        super().__init__(db)
