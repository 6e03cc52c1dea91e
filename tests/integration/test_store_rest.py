"""The store contract tests again, through the REST client against a real `runner server`."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.server.app import Settings
from runner.store import Store
from runner.store.open import open_store
from runner.store.rest import RestStore
from tests.live_server import serving
from tests.unit import test_store as contract


def _portable(test: Any) -> bool:
    """A contract test that takes the `store` fixture and does not open the SQLite file."""
    return "store" in inspect.signature(test).parameters and "sqlite" not in inspect.getsource(test)


for _name, _test in vars(contract).items():
    if _name.startswith("test_") and _portable(_test):
        globals()[_name] = _test


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    settings = Settings(store_uri=f"sqlite:///{tmp_path / 'server.db'}")
    with serving(settings) as url:
        opened = open_store(url)
        assert isinstance(opened, RestStore)
        yield opened
        opened.close()


def test_rest_client_matches_the_protocol_signatures() -> None:
    for name, method in inspect.getmembers(Store, inspect.isfunction):
        if not name.startswith("_"):
            assert inspect.signature(getattr(RestStore, name)) == inspect.signature(method), name


def test_the_contract_suite_was_collected() -> None:
    collected: list[Any] = [n for n in globals() if n.startswith("test_")]
    assert len(collected) > 20
