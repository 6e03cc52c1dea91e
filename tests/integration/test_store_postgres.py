"""The store contract tests again, on a real PostgreSQL server (SqlStore), one database each."""

from __future__ import annotations

import inspect
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.store import Store
from runner.store.open import open_store
from tests.pg_server import ServerUnavailable, postgres_server
from tests.unit import test_store as contract


def _portable(test: Any) -> bool:
    """A contract test that takes the `store` fixture and does not open the SQLite file."""
    return "store" in inspect.signature(test).parameters and "sqlite" not in inspect.getsource(test)


# every portable contract test runs here again, against PostgreSQL
for _name, _test in vars(contract).items():
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
def store(postgres_url: str) -> Iterator[Store]:
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    opened = open_store(postgres_url.rsplit("/", 1)[0] + f"/{name}")
    assert type(opened).__name__ == "SqlStore"
    yield opened
    opened.close()
    admin.dispose()


def test_the_contract_suite_was_collected() -> None:
    collected: list[Any] = [n for n in globals() if n.startswith("test_")]
    assert len(collected) > 20
