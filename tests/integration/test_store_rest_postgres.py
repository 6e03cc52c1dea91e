"""The store contract through the REST client, against a `runner server` on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.server.app import Settings
from runner.store import Store
from runner.store.open import open_store
from runner.store.rest import RestStore
from tests.integration import test_store_rest as rest_contract
from tests.integration.test_store_postgres import database_url, postgres_url  # noqa: F401
from tests.live_server import serving

for _name, _test in vars(rest_contract).items():
    if _name.startswith("test_") and _name != "test_the_contract_suite_was_collected":
        globals()[_name] = _test


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:  # noqa: F811
    settings = Settings(store_uri=database_url, artifact_root=str(tmp_path / "artifacts"))
    with serving(settings) as url:
        opened = open_store(url)
        assert isinstance(opened, RestStore)
        yield opened
        opened.close()


def test_the_suite_was_collected() -> None:
    collected: list[Any] = [name for name in globals() if name.startswith("test_")]
    assert len(collected) > 20
