"""What entry points import to log metrics, params, tags and artifacts into their own run.

Standard library only, because it also runs inside project environments that do not have
runner installed: there it is importable as ``runner_tracking`` (the runner puts a copy on
PYTHONPATH). The transport comes from the run's environment (``RUNNER_TRACKING_TRANSPORT``):

- ``journal`` (local and container runs): records are appended as JSON lines to the run's
  ``tracking.jsonl`` in ``RUNNER_ARTIFACTS_DIR``; the runner moves them into the store, so an
  entry point never holds a database connection.
- ``http`` (runs on other machines): records are POSTed to the tracking server named by
  ``RUNNER_TRACKING_URI`` (``/api/runs/<id>/journal``, the journal's own record format, each
  with a unique ``id`` so a retried request never duplicates), artifacts PUT under
  ``/api/runs/<id>/artifacts/files/<path>``.

Logging never kills an entry point: a server that does not answer costs a warning, once.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

JOURNAL = "tracking.jsonl"
OUTPUT_TAG = "runner.output."  # + a name: a value the entry point logged with log_output
HTTP_TIMEOUT = 10.0
_warned: set[str] = set()


def active_run_id() -> str | None:
    """The id of the run this process belongs to, or None outside runner."""
    return os.environ.get("RUNNER_RUN_ID")


def transport() -> str | None:
    """``journal``, ``http``, or None outside a run (or when the run names no transport)."""
    if not active_run_id():
        return None
    kind = os.environ.get("RUNNER_TRACKING_TRANSPORT")
    if kind is None and os.environ.get("RUNNER_ARTIFACTS_DIR"):
        return "journal"  # set by runners older than the transport variable
    return kind if kind in ("journal", "http") else None


def _warn_once(what: str, message: str) -> None:
    if what not in _warned:
        _warned.add(what)
        print(f"runner_tracking: {message}", file=sys.stderr)


def _not_in_run() -> None:
    _warn_once("no-run", "not inside a runner run; nothing is recorded")


def _artifacts_dir() -> Path | None:
    path = os.environ.get("RUNNER_ARTIFACTS_DIR")
    return Path(path) if path and transport() == "journal" else None


def _append(record: dict[str, Any]) -> None:
    kind = transport()
    if kind == "http":
        _post([{**record, "id": uuid.uuid4().hex}])
    elif kind == "journal" and (directory := _artifacts_dir()) is not None:
        _write_line(directory / JOURNAL, record)
    else:
        _not_in_run()


def _write_line(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, separators=(",", ":")) + "\n"
    # one O_APPEND write per record: concurrent writers never interleave within a line
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _run_url(suffix: str) -> str:
    base = os.environ.get("RUNNER_TRACKING_URI", "").rstrip("/")
    return f"{base}/api/runs/{quote(active_run_id() or '', safe='')}/{suffix}"


def _send(method: str, url: str, body: bytes, content_type: str) -> bool:
    """One request with one retry; False (after a single warning) when the server fails."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )
    for attempt in (1, 2):
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError) as exc:
            if attempt == 2:
                _warn_once("http", f"the tracking server did not take a record: {exc}")
    return False


def _post(records: list[dict[str, Any]]) -> None:
    body = json.dumps({"records": records}, separators=(",", ":")).encode()
    _send("POST", _run_url("journal"), body, "application/json")


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


def log_output(name: str, value: Any) -> None:
    """Publish ``value`` as this run's output ``name``: in a workflow, a later step's
    parameter ``${{ steps.<this step>.outputs.<name> }}`` receives it (as text).

    Recorded as the tag ``runner.output.<name>``, so every transport and store takes it."""
    _append({"t": "tag", "key": OUTPUT_TAG + str(name), "value": str(value)})


def _checked_artifact_path(artifact_path: str) -> str:
    parts = Path(artifact_path).parts
    if Path(artifact_path).is_absolute() or ".." in parts:
        raise ValueError(f"artifact_path {artifact_path!r} escapes the run's artifacts")
    return "/".join(parts)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str = "") -> Path | None:
    """Copy a file or folder into the run's artifacts (under ``files/<artifact_path>``).

    Returns the copy's path for a journal run; None when it was uploaded or not recorded.
    """
    relative = _checked_artifact_path(artifact_path)
    source = Path(local_path)
    kind = transport()
    if kind == "http":
        _upload(source, relative)
        return None
    directory = _artifacts_dir()
    if directory is None:
        _not_in_run()
        return None
    target = (directory / "files" / relative).resolve()
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        return Path(shutil.copytree(source, target / source.name, dirs_exist_ok=True))
    return Path(shutil.copy2(source, target / source.name))


def _upload(source: Path, relative: str) -> None:
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    root = source.parent
    for path in files:
        name = "/".join(filter(None, [relative, path.relative_to(root).as_posix()]))
        url = _run_url(f"artifacts/files/{quote(name)}")
        _send("PUT", url, path.read_bytes(), "application/octet-stream")
