"""SQLAlchemy engines for tracking URIs (imported only off the stdlib SQLite path)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from runner.errors import StoreError
from runner.redact import redact_uri
from runner.store.records import SQLITE_PRAGMAS

# Connection execution option: a plain (deferred) transaction on SQLite, so checks and reads do
# not take the write lock that every other SQLAlchemy transaction takes.
READ_OPTION = "runner_read"


SUPPORTED = ("sqlite", "postgresql")  # the SQL is written for these two (ON CONFLICT, ...)


def make_engine(uri: str) -> Engine:
    """An engine for ``uri``; SQLite connections get WAL-friendly settings and BEGIN IMMEDIATE."""
    _check_supported(uri)
    try:
        engine = create_engine(uri, pool_pre_ping=not uri.startswith("sqlite"))
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the database driver for {redact_uri(uri)} is not installed ({exc.name})",
            hint="install it, e.g. pip install 'psycopg[binary]' for postgresql+psycopg://",
        ) from exc
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"unsupported tracking URI {redact_uri(uri)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _check_supported(uri: str) -> None:
    """Other databases are refused by name, before any driver is looked for."""
    dialect = uri.partition(":")[0].partition("+")[0].lower()
    if dialect not in SUPPORTED:
        raise StoreError(
            f"unsupported tracking URI {redact_uri(uri)}: runner keeps runs in SQLite or "
            "PostgreSQL",
            hint="use sqlite:////path/to/runner.db or postgresql+psycopg://user@host/db",
        )


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun explicitly (see _on_sqlite_begin), never by the driver.
    dbapi_connection.isolation_level = None
    for pragma in SQLITE_PRAGMAS:
        dbapi_connection.execute(pragma)


def _on_sqlite_begin(conn: Connection) -> None:
    # A deferred write transaction can hit SQLITE_BUSY on upgrade despite busy_timeout;
    # taking the write lock up front makes writers queue instead.
    reading = conn.get_execution_options().get(READ_OPTION, False)
    conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
