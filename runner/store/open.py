"""Open the tracking store a URI names: stdlib SQLite for sqlite:/// files, SQLAlchemy otherwise."""

from __future__ import annotations

import os

from runner.errors import StoreError
from runner.home import tracking_uri
from runner.store import Store
from runner.store.migrate import sqlite_path

IMPL_VARIABLE = "RUNNER_STORE_IMPL"
_IMPLS = ("auto", "sqlalchemy")


def open_store(uri: str | None = None) -> Store:
    """The store at ``uri`` (default: ``runner.home.tracking_uri()``), schema at head;
    an ``http(s)://`` URI is a `runner server` (the REST client).

    SQLite files go through the stdlib ``sqlite3`` module because importing SQLAlchemy costs
    more than a whole ``runner run``; ``RUNNER_STORE_IMPL=sqlalchemy`` forces SQLAlchemy.
    """
    uri = uri or tracking_uri()
    if uri.startswith(("http://", "https://")):
        from runner.store.rest import RestStore

        return RestStore(uri)
    path = sqlite_path(uri)
    if path is not None and _impl() == "auto":
        from runner.store.sqlite import SqliteStore

        return SqliteStore(path)
    from runner.store.sql import SqlStore

    return SqlStore(uri)


def _impl() -> str:
    impl = os.environ.get(IMPL_VARIABLE) or "auto"
    if impl not in _IMPLS:
        raise StoreError(f"{IMPL_VARIABLE}={impl!r} is not one of {', '.join(_IMPLS)}")
    return impl
