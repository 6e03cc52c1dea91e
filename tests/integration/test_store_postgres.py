"""The store contract tests again, on a real PostgreSQL server (SqlStore), one database each."""

from __future__ import annotations

import inspect
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner.store import Store
from runner.store.open import open_store
from tests.pg_server import ServerUnavailable, postgres_server
from tests.unit import test_store as contract
from tests.unit import test_workflow_store as cache_contract


def _portable(test: Any) -> bool:
    """A contract test that takes the `store` fixture and does not open the SQLite file."""
    return "store" in inspect.signature(test).parameters and "sqlite" not in inspect.getsource(test)


# every portable contract test runs here again, against PostgreSQL
for _name, _test in vars(contract).items():
    if _name.startswith("test_") and _portable(_test):
        globals()[_name] = _test
for _name, _test in vars(cache_contract).items():  # the step cache and children queries
    if _name.startswith("test_") and _portable(_test):
        globals()[_name] = _test


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
    base = Path(tempfile.mkdtemp(prefix="runner-pg-"))
    base.chmod(0o755)
    try:
        with postgres_server(base) as url:
            yield url
    except ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A new, empty database of the session's server."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    assert type(opened).__name__ == "SqlStore"
    yield opened
    opened.close()


def test_indexes_after_migration_on_postgresql(database_url: str) -> None:
    from sqlalchemy import create_engine, inspect

    open_store(database_url).close()
    engine = create_engine(database_url)
    indexes = {index["name"]: index for index in inspect(engine).get_indexes("runs")}
    engine.dispose()
    for name, (columns, predicate) in contract.NEW_INDEXES.items():
        assert indexes[name]["column_names"] == columns, name
        where = str(indexes[name].get("dialect_options", {}).get("postgresql_where", ""))
        # PostgreSQL keeps its own rendering of a predicate: check what it names
        assert ("SCHEDULED" in where and "RUNNING" in where) == (predicate is not None), where
        assert ("runner_pid IS NULL" in where) == (name == "ix_runs_live_backend"), where
    assert "ix_runs_status" not in indexes


def test_one_claim_wins_across_connections(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def claim(store: Store) -> bool:
        barrier.wait()
        return store.claim_interval("batch", 3600)

    with ThreadPoolExecutor(len(stores)) as pool:
        results = list(pool.map(claim, stores))
    assert sorted(results) == [False] * 5 + [True]
    for store in stores:
        store.close()


def test_the_contract_suite_was_collected() -> None:
    collected: list[Any] = [n for n in globals() if n.startswith("test_")]
    assert len(collected) > 20
