"""The store's server-side writes and search again, on a real PostgreSQL server."""

from __future__ import annotations

import inspect
from typing import Any

from tests.integration.test_store_postgres import database_url, postgres_url, store  # noqa: F401
from tests.unit import test_store_server as server_tests

for _name, _test in vars(server_tests).items():
    parameters = inspect.signature(_test).parameters if callable(_test) else {}
    if _name.startswith("test_") and "store" in parameters:
        globals()[_name] = _test


def test_the_suite_was_collected() -> None:
    collected: list[Any] = [name for name in globals() if name.startswith("test_")]
    assert len(collected) > 8
