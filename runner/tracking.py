"""What entry points import to log metrics, params, tags and artifacts into their own run.

Standard library only, because it also runs inside project environments that do not have
runner installed: there it is importable as ``runner_tracking`` (the runner puts a copy on
PYTHONPATH). The transport comes from the run's environment (``RUNNER_TRACKING_TRANSPORT``):

- ``journal`` (local and container runs): records are appended as JSON lines to the run's
  ``tracking.jsonl`` in ``RUNNER_ARTIFACTS_DIR``; the runner moves them into the store, so an
  entry point never holds a database connection.
- ``http`` (runs on other machines): records are POSTed in batches to the tracking server
  named by ``RUNNER_TRACKING_URI`` (``/api/runs/<id>/journal``, the journal's own record
  format, each with a unique ``id`` so a retried request never duplicates), artifacts PUT
  under ``/api/runs/<id>/artifacts/files/<path>``. Each record is first appended to a local
  buffer file, and a background thread sends what the server has not taken yet, retrying
  with backoff while it is down; at exit it keeps trying for ``RUNNER_TRACKING_FLUSH_SECONDS``
  (30). What is still undelivered stays in the buffer file, and the next ``runner_tracking``
  of the same run on this machine sends it.

Logging never kills an entry point: a server that does not answer costs a warning, once.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

JOURNAL = "tracking.jsonl"
HTTP_TIMEOUT = 10.0
BATCH = 1000  # records per request
SEND_INTERVAL = 0.2  # seconds the sender waits for more records before it sends a batch
MAX_BACKOFF = 10.0
ARTIFACT_ATTEMPTS = 5
UNDELIVERED_TAG = "runner.tracking_undelivered"
_warned: set[str] = set()
_outbox: _Outbox | None = None
_outbox_lock = threading.Lock()


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
        _http_outbox().add({**record, "id": uuid.uuid4().hex})
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


def _send(method: str, url: str, body: Any, content_type: str, length: int = -1) -> int | None:
    """One request: the HTTP status, or None when the server could not be reached.

    ``body`` is bytes, or an open file sent as it is read (``length`` bytes).
    """
    import urllib.error
    import urllib.request

    headers = {"Content-Type": content_type}
    if length >= 0:
        headers["Content-Length"] = str(length)
    token = os.environ.get("RUNNER_TRACKING_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _retryable(status: int | None) -> bool:
    return status is None or status in (408, 429) or status >= 500


def _buffer_dir() -> Path:
    given = os.environ.get("RUNNER_TRACKING_BUFFER_DIR")
    path = Path(given) if given else Path(tempfile.gettempdir()) / "runner-tracking"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        pass
    return True


class _Outbox:
    """This process's records for an HTTP tracking server: a local file first (nothing is lost
    while the server is down, nor if this process dies), sent in batches by a thread."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.pid = os.getpid()
        prefix = quote(run_id, safe="")
        self.dir = _buffer_dir()
        self.path = self.dir / f"{prefix}.{self.pid}.{uuid.uuid4().hex[:8]}.jsonl"
        # what earlier processes of this run left undelivered: sent again (ids dedupe)
        self.files = [p for p in self.dir.glob(f"{prefix}.*.jsonl") if self._orphan(p)]
        self.files.append(self.path)
        self.offsets: dict[Path, int] = {}
        self.dropped = 0
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.done = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._loop, name="runner-tracking", daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def _orphan(self, path: Path) -> bool:
        pid = path.name.split(".")[-3]
        return pid.isdigit() and not _alive(int(pid))

    def add(self, record: dict[str, Any]) -> None:
        try:
            _write_line(self.path, record)
        except OSError as exc:
            _warn_once("buffer", f"cannot buffer records in {self.path}: {exc}; sending directly")
            self._post([record])
            return
        self.wake.set()

    def pending(self) -> int:
        """Bytes written to the buffer files that the server has not taken."""
        return sum(_size(path) - self.offsets.get(path, 0) for path in self.files)

    def flush(self, timeout: float) -> bool:
        """Wait until everything buffered is delivered (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        self.wake.set()
        with self.done:
            while self.pending() > 0 and time.monotonic() < deadline and self.thread.is_alive():
                self.done.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.pending() <= 0

    def close(self) -> None:
        seconds = float(os.environ.get("RUNNER_TRACKING_FLUSH_SECONDS") or 30)
        delivered = self.flush(seconds)
        self.closing = True
        self.wake.set()
        if delivered:
            for path in self.files:
                path.unlink(missing_ok=True)
            return
        _warn_once(
            "undelivered",
            f"the tracking server did not take every record in {seconds:.0f} s; they are kept "
            f"in {self.dir} and sent by the next runner_tracking of this run on this machine",
        )

    def _loop(self) -> None:
        delay = 0.0
        while not self.closing:
            self.wake.wait(SEND_INTERVAL if delay == 0 else delay)
            self.wake.clear()
            try:
                delivered = self._drain()
            except Exception as exc:  # never let the sender die: the entry point goes on
                _warn_once("sender", f"sending records failed: {exc!r}")
                delivered = False
            delay = 0.0 if delivered else min(MAX_BACKOFF, max(0.5, delay * 2))
            with self.done:
                self.done.notify_all()

    def _drain(self) -> bool:
        """Send what every buffer file holds beyond its offset; False when the server failed."""
        for path in list(self.files):
            if not self._drain_file(path):
                return False
            if path != self.path:
                path.unlink(missing_ok=True)  # an earlier process's leftovers, all delivered
                self.files.remove(path)
        return True

    def _drain_file(self, path: Path) -> bool:
        while True:
            lines, length = _read_lines(path, self.offsets.get(path, 0), BATCH)
            if not lines:
                return True
            records = [record for line in lines if (record := _record(line)) is not None]
            if records and not self._post(records):
                return False
            self.offsets[path] = self.offsets.get(path, 0) + length

    def _post(self, records: list[dict[str, Any]]) -> bool:
        body = json.dumps({"records": records}, separators=(",", ":")).encode()
        status = _send("POST", _run_url("journal"), body, "application/json")
        if status is not None and 200 <= status < 300:
            return True
        if _retryable(status):
            reason = "is not reachable" if status is None else f"answered HTTP {status}"
            _warn_once("http", f"the tracking server {reason}; records are buffered and retried")
            return False
        self.dropped += len(records)  # refused as a whole (HTTP 4xx): retrying cannot help
        _warn_once("refused", f"the tracking server refused records with HTTP {status}")
        return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_lines(path: Path, offset: int, most: int) -> tuple[list[bytes], int]:
    """Up to ``most`` complete lines after ``offset``, and how many bytes they take."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = []
            length = 0
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a line still being written
                lines.append(line)
                length += len(line)
                if len(lines) >= most:
                    break
            return lines, length
    except FileNotFoundError:
        return [], 0


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        return record if isinstance(record := json.loads(line), dict) else None
    except ValueError:
        return None


def _http_outbox() -> _Outbox:
    global _outbox
    with _outbox_lock:
        pid, run_id = os.getpid(), active_run_id() or ""
        if _outbox is None or _outbox.pid != pid or _outbox.run_id != run_id:
            _outbox = _Outbox(run_id)  # a forked child gets its own file and thread
        return _outbox


def flush(timeout: float = 30.0) -> bool:
    """Deliver what was logged over HTTP so far; True when the server has taken all of it.

    Not needed before exit (that flushes too); useful before a step that must see the values.
    """
    if transport() != "http" or _outbox is None or _outbox.pid != os.getpid():
        return True
    return _outbox.flush(timeout)


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
        _put_file(_run_url(f"artifacts/files/{quote(name)}"), path)


def _put_file(url: str, path: Path) -> None:
    """Upload one file, retried with backoff; a warning (once) when it could not be."""
    status: int | None = None
    for attempt in range(ARTIFACT_ATTEMPTS):
        if attempt:
            time.sleep(min(MAX_BACKOFF, 0.5 * 2**attempt))
        try:
            with open(path, "rb") as data:  # streamed: a large file is never read whole
                status = _send(
                    "PUT", url, data, "application/octet-stream", os.fstat(data.fileno()).st_size
                )
        except OSError as exc:
            _warn_once("artifact", f"artifact {path} cannot be read: {exc}")
            return
        if status is not None and 200 <= status < 300:
            return
        if not _retryable(status):
            break
    reason = "could not be reached" if status is None else f"answered HTTP {status}"
    _warn_once("artifact", f"artifact {path} was not uploaded: the tracking server {reason}")
