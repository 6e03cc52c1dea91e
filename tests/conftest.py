"""Shared fixtures: every test gets its own RUNNER_HOME; the real ~/.runner is never touched."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def runner_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RUNNER_HOME per test, and HOME pointed away so ~/.runner cannot be written."""
    home = tmp_path_factory.mktemp("runner_home")
    monkeypatch.setenv("RUNNER_HOME", str(home))
    monkeypatch.delenv("RUNNER_TRACKING_URI", raising=False)
    monkeypatch.setenv("RUNNER_TRACKING_BUFFER_DIR", str(home / "tracking-buffer"))
    fake_user_home = tmp_path_factory.mktemp("user_home")
    monkeypatch.setenv("HOME", str(fake_user_home))
    # git identity for commits made by tests, without reading the user's config
    for var, value in {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(var, value)
    return home


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private tempfile.gettempdir(), so leaked temp dirs (checkouts, unzips) can be counted."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root
