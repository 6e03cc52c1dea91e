"""--detach: the supervisor marks its run launched; the detaching side waits for that mark."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from runner.atomic import write_atomically
from runner.errors import RunnerError
from runner.home import run_artifacts_dir

if TYPE_CHECKING:
    from runner.store import RunRecord, Store

LAUNCHED_FILE = "launched.json"
SUPERVISOR_LOG = "supervisor.log"
ENV_BUILD_LOG = "env-build.log"
# what a run that ended before its launch points to, when it exists
LOGS = ((ENV_BUILD_LOG, "the environment build's log"), (SUPERVISOR_LOG, "the supervisor's log"))
PROGRESS_PREFIX = "runner: "  # how a progress line starts in supervisor.log
HINT_PREFIX = "hint: "  # and the hint of the error it ended with
TAIL_BYTES = 64 << 10  # where that error is, at the end of the log
POLL_SECONDS = 0.1
Progress = Callable[[str], None]


def mark_launched(run_id: str) -> None:
    """The backend has accepted the run (a process, a container, a Job, a queued job); its
    progress lines up to then are in supervisor.log.

    A local file, not a store write: the detaching side runs on this host, and it is as cheap
    to watch with a file store as with a tracking server. Losing the mark (a full disk) must not
    fail a launched run: the detaching side then waits for the run's end instead."""
    stamp = json.dumps({"run_id": run_id, "launched_at": time.time()})
    with suppress(OSError):
        write_atomically(run_artifacts_dir(run_id) / LAUNCHED_FILE, stamp)


def is_launched(run_id: str) -> bool:
    return (run_artifacts_dir(run_id) / LAUNCHED_FILE).is_file()


def wait_until_launched(
    run_id: str, supervisor: subprocess.Popen[bytes], store: Store, progress: Progress
) -> None:
    """Return once ``supervisor`` has launched the run, passing its progress lines on.

    Raises ``RunnerError`` when the run ended before it was launched (its failure reason and
    where its logs are), or when the supervisor died without launching it."""
    log = LogTail(run_artifacts_dir(run_id) / SUPERVISOR_LOG)
    while True:
        exited = supervisor.poll() is not None  # asked first: a launch before the exit is seen
        launched = is_launched(run_id)
        for line in log.progress_lines():  # read after the look: all lines before the mark
            progress(line)
        if launched:
            return
        if exited:
            raise _not_launched(run_id, supervisor.returncode, store)
        time.sleep(POLL_SECONDS)


class LogTail:
    """The progress lines appended to a log since the last look (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""

    def progress_lines(self) -> list[str]:
        try:
            with open(self._path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        texts = (line.decode(errors="replace") for line in lines)
        return [text[len(PROGRESS_PREFIX) :] for text in texts if text.startswith(PROGRESS_PREFIX)]


def _not_launched(run_id: str, exit_code: int, store: Store) -> RunnerError:
    record = store.get_run(run_id)
    if record.status.is_terminal:
        return _ended_before_launch(record)
    from runner.execution.reconcile import reconcile

    with suppress(RunnerError):  # its runner is gone: record the run lost now, not later
        reconcile(store)
    return RunnerError(
        f"the supervisor of run {run_id} {_how_it_ended(exit_code)} before it launched the run",
        hint=f"see the supervisor's log: {run_artifacts_dir(run_id) / SUPERVISOR_LOG}",
    )


def _ended_before_launch(record: RunRecord) -> RunnerError:
    reason = f": {record.failure_reason}" if record.failure_reason else ""
    return RunnerError(
        f"run {record.run_id} {record.status.value} before it was launched{reason}",
        hint="; ".join(_hints(record.run_id)) or None,
    )


def _hints(run_id: str) -> list[str]:
    """The hint the supervisor's error had (the store keeps only its message), else where the
    logs are; the supervisor's log last."""
    artifacts = run_artifacts_dir(run_id)
    given = _last_hint(artifacts / SUPERVISOR_LOG)
    logs = LOGS[1:] if given and ENV_BUILD_LOG in given else LOGS  # it names that log already
    found = [f"{what}: {artifacts / name}" for name, what in logs if (artifacts / name).is_file()]
    return [given, *found] if given else found


def _last_hint(log: Path) -> str | None:
    """The hint line of the error the supervisor wrote last (``RunnerError.render``)."""
    try:
        with open(log, "rb") as file:
            file.seek(max(0, file.seek(0, 2) - TAIL_BYTES))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    hints = [line.removeprefix(HINT_PREFIX) for line in lines if line.startswith(HINT_PREFIX)]
    return hints[-1] if hints else None


def _how_it_ended(exit_code: int) -> str:
    if exit_code < 0:
        return f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"
