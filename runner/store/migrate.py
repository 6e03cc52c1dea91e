"""Bring a store's schema to head once, under a lock; the fast path imports nothing heavy."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import StoreError
from runner.locks import LockTimeout, exclusive_lock

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

# Must equal the newest revision in migrations/versions (a unit test checks it), so the fast path
# can compare against it without importing alembic.
HEAD_REVISION = "0004"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004")
LOCK_TIMEOUT = 300.0
SCRIPT_LOCATION = "runner.store:migrations"
_PG_LOCK_KEY = 0x72756E6E  # any constant shared by all runner processes: "runn"
_SQLITE_URL = re.compile(r"^sqlite(\+pysqlite)?://(?P<rest>.*)$")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI; None for any other kind of URI."""
    match = _SQLITE_URL.match(uri)
    if match is None:
        return None
    rest = match["rest"]
    if rest in ("", "/", "/:memory:") or not rest.startswith("/"):
        raise StoreError(
            f"the tracking store must be a SQLite file, not {uri!r}",
            hint="use sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    if "?" in rest:
        raise StoreError(f"options in SQLite tracking URIs are not supported: {uri!r}")
    return Path(rest[1:]).absolute()


def ensure_sqlite_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Return at once if ``conn``'s database is at head; else migrate through SQLAlchemy."""
    if _is_head(_sqlite_revision(conn, path), path):
        return
    # Processes that only wait for another one's migration never import SQLAlchemy.
    with _file_lock(path):
        if _is_head(_sqlite_revision(conn, path), path):
            return
        from runner.store.engine import make_engine

        engine = make_engine(f"sqlite:///{path}")
        try:
            _migrate(engine, path)
        finally:
            engine.dispose()


def ensure_engine_schema(engine: Engine, path: Path | None = None) -> None:
    """Migrate ``engine``'s database to head unless it is there; ``path`` names a SQLite file."""
    from sqlalchemy.exc import SQLAlchemyError

    from runner.store.engine import READ_OPTION

    try:
        with engine.connect() as conn, conn.execution_options(**{READ_OPTION: True}).begin():
            if _is_head(_engine_revision(conn), path or engine.url):
                return
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the tracking store {path or engine.url}: {exc}") from exc
    with _file_lock(path) if path else nullcontext():
        _migrate(engine, path)


def _migrate(engine: Engine, path: Path | None) -> None:
    """Upgrade to head; the caller holds the file lock (SQLite) or nothing (other databases)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if path:
            _enable_wal(engine, path)
        _upgrade(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the tracking store {path or engine.url}: {exc}") from exc


def _is_head(revision: str | None, where: object) -> bool:
    if revision == HEAD_REVISION:
        return True
    if revision is not None and revision not in KNOWN_REVISIONS:
        raise StoreError(
            f"the tracking store {where} has schema revision {revision!r}, newer than this "
            f"runner understands (it knows up to {HEAD_REVISION!r})",
            hint="upgrade runner (pip install -U runner) to use this store",
        )
    return False


def _sqlite_revision(conn: sqlite3.Connection, path: Path) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            _refuse_foreign(_sqlite_tables(conn, path), path)
            return None  # a new, empty database
        raise StoreError(f"cannot read the tracking store {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise not_a_store(path, exc) from exc
    return None if row is None else str(row[0])


def _sqlite_tables(conn: sqlite3.Connection, path: Path) -> list[str]:
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        return [str(name) for (name,) in conn.execute(query)]
    except sqlite3.DatabaseError as exc:
        raise not_a_store(path, exc) from exc


def _refuse_foreign(tables: list[str], where: object) -> None:
    """A database with tables but no runner schema version belongs to another program: it is
    left untouched rather than given runner's tables."""
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"{where} is not a runner tracking store: it has tables ({shown}) but no runner "
            "schema version, so it belongs to another program and is left untouched",
            hint="point RUNNER_TRACKING_URI (or RUNNER_HOME) at a new or runner-made database",
        )


def not_a_store(path: Path, exc: Exception) -> StoreError:
    """The message for a file SQLite cannot read as a database (another format, or corrupt)."""
    return StoreError(
        f"the tracking store {path} is not a readable SQLite database ({exc})",
        hint="if it is damaged, move it aside (runner starts a new store) or restore a backup",
    )


def _engine_revision(conn: Connection) -> str | None:
    from sqlalchemy import inspect

    # Probing with a failing SELECT would abort a PostgreSQL transaction; ask the catalog, once:
    # under READ COMMITTED a second catalog query could see another process's migration commit
    # and mistake a store migrated meanwhile for another program's database.
    tables = sorted(inspect(conn).get_table_names())
    if "alembic_version" not in tables:
        _refuse_foreign(tables, conn.engine.url)
        return None
    found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if found is None else str(found)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        with exclusive_lock(path.with_name(path.name + ".lock"), timeout=LOCK_TIMEOUT):
            yield
    except LockTimeout as exc:
        raise StoreError(
            str(exc), hint="another runner process is migrating this store; is it stuck?"
        ) from exc


def _enable_wal(engine: Engine, path: Path) -> None:
    # journal_mode cannot change inside a transaction, and the engine opens one on first use.
    raw = engine.raw_connection()
    try:
        pragma = "PRAGMA journal_mode=WAL"
        mode = raw.driver_connection.execute(pragma).fetchone()[0]  # type: ignore[union-attr]
    finally:
        raw.close()
    if mode != "wal":  # SQLite keeps the old mode when the file system cannot do WAL
        raise StoreError(
            f"cannot put the tracking store {path} in WAL mode (it stays in {mode!r} mode)",
            hint="SQLite needs a local file system; on network storage use PostgreSQL",
        )


def _upgrade(engine: Engine) -> None:
    # One transaction for every revision: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL.
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        if _is_head(_engine_revision(conn), engine.url):
            return  # another process migrated while this one waited for the lock
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", SCRIPT_LOCATION)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
