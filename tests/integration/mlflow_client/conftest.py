"""Fixtures for the MLflow client tests: the client's own venv, and a `runner server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_store_postgres import database_url, postgres_url  # noqa: F401
from tests.live_server import free_port, server_process
from tests.mlflow_venv import create_mlflow_venv


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the session: the client venv and python_env runs share downloads."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(scope="session")
def mlflow_python(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Path:
    """The python of a venv holding MLflow's real client from the package index."""
    return create_mlflow_venv(tmp_path_factory.mktemp("mlflow-client") / "venv", uv_cache)


@pytest.fixture
def runner_server(runner_home: Path, tmp_path: Path) -> Iterator[str]:
    """A `runner server` process over this test's RUNNER_HOME; its URL."""
    port = free_port()
    with server_process(port, log=tmp_path / "server.log"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def runner_server_on_postgres(database_url: str, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    """A `runner server` process over a fresh PostgreSQL database; its URL."""
    port = free_port()
    env = {"RUNNER_TRACKING_URI": database_url}
    with server_process(port, env=env, log=tmp_path / "server.log"):
        yield f"http://127.0.0.1:{port}"
