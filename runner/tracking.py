"""What entry points import to log metrics, params, tags and artifacts into their own run.

Standard library only, because it also runs inside project environments that do not have
runner installed: there it is importable as ``runner_tracking`` (the runner puts a copy on
PYTHONPATH). Records are appended as JSON lines to the run's ``tracking.jsonl``; the runner
moves them into the tracking store, so an entry point never holds a database connection and
works the same in a container.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

JOURNAL = "tracking.jsonl"
_warned = False


def active_run_id() -> str | None:
    """The id of the run this process belongs to, or None outside runner."""
    return os.environ.get("RUNNER_RUN_ID")


def _artifacts_dir() -> Path | None:
    path = os.environ.get("RUNNER_ARTIFACTS_DIR")
    return Path(path) if path and active_run_id() else None


def _append(record: dict[str, Any]) -> None:
    global _warned
    directory = _artifacts_dir()
    if directory is None:
        if not _warned:
            print("runner_tracking: not inside a runner run; nothing is recorded", file=sys.stderr)
            _warned = True
        return
    line = json.dumps(record, separators=(",", ":")) + "\n"
    # one O_APPEND write per record: concurrent writers never interleave within a line
    fd = os.open(directory / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _now_ms() -> int:
    return int(time.time() * 1000)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Record ``value`` for ``key`` at ``step`` (timestamp in ms since the epoch)."""
    _append(
        {
            "t": "metric",
            "key": str(key),
            "value": float(value),
            "step": int(step),
            "ts": timestamp if timestamp is not None else _now_ms(),
        }
    )


def log_metrics(metrics: dict[str, float], step: int = 0) -> None:
    ts = _now_ms()
    for key, value in metrics.items():
        log_metric(key, value, step, ts)


def log_param(key: str, value: Any) -> None:
    _append({"t": "param", "key": str(key), "value": str(value)})


def set_tag(key: str, value: Any) -> None:
    _append({"t": "tag", "key": str(key), "value": str(value)})


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str = "") -> Path | None:
    """Copy a file or folder into the run's artifacts (under ``files/<artifact_path>``)."""
    directory = _artifacts_dir()
    if directory is None:
        _append({})  # prints the not-in-a-run warning once
        return None
    source = Path(local_path)
    target = (directory / "files" / artifact_path).resolve()
    if not target.is_relative_to((directory / "files").resolve()):
        raise ValueError(f"artifact_path {artifact_path!r} escapes the run's artifacts")
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        return Path(shutil.copytree(source, target / source.name, dirs_exist_ok=True))
    return Path(shutil.copy2(source, target / source.name))
