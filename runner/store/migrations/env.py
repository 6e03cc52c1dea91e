"""Alembic environment: migrate on the connection migrate.py passes, or on sqlalchemy.url."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from runner.store.schema import metadata


def _migrate(connection: Connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (copy-and-rename under the hood).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    # Developer use (`alembic -x ... revision --autogenerate`) with sqlalchemy.url set.
    engine = create_engine(context.config.get_main_option("sqlalchemy.url", ""))
    with engine.begin() as conn:
        _migrate(conn)


_run()
