"""Where runner keeps its state: RUNNER_HOME (default ~/.runner) and the tracking URI."""

from __future__ import annotations

import os
from pathlib import Path


def runner_home() -> Path:
    """The state directory: ``$RUNNER_HOME`` or ``~/.runner``; created on first use."""
    home = Path(os.environ.get("RUNNER_HOME") or Path.home() / ".runner").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def tracking_uri() -> str:
    """``$RUNNER_TRACKING_URI`` (any SQLAlchemy URL) or the SQLite file in RUNNER_HOME."""
    uri = os.environ.get("RUNNER_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{runner_home() / 'runner.db'}"


def artifacts_root() -> Path:
    return runner_home() / "artifacts"


def run_artifacts_dir(run_id: str) -> Path:
    """Files of one run live under ``RUNNER_HOME/artifacts/<run-id>/``."""
    return artifacts_root() / run_id
