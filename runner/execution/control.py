"""A recorded run controlled from any process: cancel it, follow its output, refresh its status.

A run whose runner process lives is controlled through that process (a signal; it cancels its
backend and records the end). A run its backend kept alive after the runner went away
("released": RUNNING with no runner process) is re-opened through ``Backend.attach``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runner.backend import ExitInfo, RunHandle, load_backend
from runner.errors import RunnerError
from runner.execution.orchestrator import LOG_FILE
from runner.execution.reconcile import is_kept, keep_backend_logs, reconcile, ref_of, refresh
from runner.home import run_artifacts_dir
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.store import LiveRun, RunRecord, Store

Write = Callable[[bytes], None]


def is_released(live: LiveRun | None) -> bool:
    """Running (or queued) where its backend runs it, with no runner process attached."""
    return live is not None and live.runner_pid is None and is_kept(live)


def current_record(store: Store, run_id: str) -> RunRecord:
    """The run's record, after asking its backend about it if the backend keeps it alive."""
    record = store.get_run(run_id)
    if not record.status.is_terminal and is_released(store.live_run(record.run_id)):
        refresh(store, record.backend)
        record = store.get_run(record.run_id)
    return record


def cancel_run(store: Store, run_id: str, wait_seconds: float = 30.0) -> RunStatus:
    """Stop a run and return its status once it ended (or after ``wait_seconds``)."""
    record = store.get_run(run_id)
    live = None if record.status.is_terminal else store.live_run(record.run_id)
    if live is None:
        return store.get_run(record.run_id).status
    if is_released(live):
        return _cancel_through_backend(store, live, wait_seconds)
    if live.runner_pid is None:
        store.finish_run(live.run_id, RunStatus.KILLED, None, "cancelled before it started")
        return RunStatus.KILLED
    if live.runner_host != socket.gethostname():
        raise RunnerError(
            f"run {live.run_id} is executed by a runner on host {live.runner_host}",
            hint="cancel it from that host",
        )
    with contextlib.suppress(ProcessLookupError):
        os.kill(live.runner_pid, signal.SIGTERM)  # the runner cancels its backend, records KILLED
    return _await_end(store, live.run_id, wait_seconds)


def _cancel_through_backend(store: Store, live: LiveRun, wait_seconds: float) -> RunStatus:
    handle = _attach(live)
    handle.cancel()
    _record_end(store, live.run_id, handle.wait(timeout=wait_seconds))
    return store.get_run(live.run_id).status


def _attach(live: LiveRun) -> RunHandle:
    return load_backend(live.backend).attach(ref_of(live))


def _record_end(store: Store, run_id: str, info: ExitInfo) -> None:
    if info.status.is_terminal:
        store.finish_run(run_id, info.status, info.exit_code, info.reason)


def _await_end(store: Store, run_id: str, wait_seconds: float) -> RunStatus:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        status = store.get_run(run_id).status
        if status.is_terminal:
            return status
        time.sleep(0.1)
    return store.get_run(run_id).status


def stream_logs(store: Store, run_id: str, *, follow: bool, write: Write) -> str | None:
    """Write the run's output; with ``follow`` until it ends. Returns a note for the user."""
    record = store.get_run(run_id)
    live = None if record.status.is_terminal else store.live_run(record.run_id)
    if is_released(live) and live is not None:
        if not follow:
            _print_from(run_artifacts_dir(record.run_id) / LOG_FILE, 0, write)
            return f"the run goes on in its {live.backend} job: --follow streams it from there"
        _follow_backend(store, live, write)
        return None
    _follow_log_file(store, record.run_id, follow, write)
    return None


def _follow_backend(store: Store, live: LiveRun, write: Write) -> None:
    """The backend's own copy of the output, from the start, until the run ends."""
    handle = _attach(live)
    for chunk in handle.logs():
        write(chunk.data)
    keep_backend_logs(live)
    _record_end(store, live.run_id, handle.wait(timeout=30))


def _follow_log_file(store: Store, run_id: str, follow: bool, write: Write) -> None:
    path = run_artifacts_dir(run_id) / LOG_FILE
    if not path.exists() and _follow_server_copy(store, run_id, follow, write):
        return
    offset = _print_from(path, 0, write)
    polls = 0
    while follow and not current_record(store, run_id).status.is_terminal:
        time.sleep(0.2)
        offset = _print_from(path, offset, write)
        polls += 1
        if polls % 25 == 0:  # every 5 s: a runner that died meanwhile must not hang us
            reconcile(store)
    if follow:
        _print_from(path, offset, write)


def _follow_server_copy(store: Store, run_id: str, follow: bool, write: Write) -> bool:
    """A run recorded from another machine: its log as its runner sends it to the tracking
    server (a part every few seconds, the whole at the end); False for a store that is not
    a server."""
    from runner.store.rest import RestStore

    if not isinstance(store, RestStore):
        return False
    offset, polls = 0, 0
    while True:
        ended = not follow or store.get_run(run_id).status.is_terminal
        offset += store.copy_run_file(run_id, LOG_FILE, write, offset) or 0
        if ended:  # read after the end was seen: the whole log had been sent by then
            return True
        time.sleep(0.5)
        polls += 1
        if polls % 10 == 0:  # every 5 s: a runner that died meanwhile must not hang us
            reconcile(store)


def _print_from(path: os.PathLike[str], offset: int, write: Write) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    write(data)
    return offset + len(data)
