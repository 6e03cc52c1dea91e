"""A toy backend whose runs outlive the runner, as a cluster's jobs do.

Each run is a detached process group (its own session, no parent-death signal) writing its
output and, when it ends, its exit code into a state folder under ``$TOY_BACKEND_STATE/<run>``;
any process can re-attach to it from there, and ``reconcile`` reads the same folder. Every
``reconcile`` call appends one line (the run ids asked about) to ``reconcile.log`` so tests can
count how often, and with how large a batch, the backend is asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from runner.backend import LOST, BaseBackend, ExitInfo, LogChunk, Prepared, RunRef, Verdict
from runner.status import RunStatus

# The job's own supervisor: it outlives a SIGTERM to the group long enough to record the code.
_WRAPPER = """
trap 'kill -TERM "$child" 2>/dev/null' TERM
bash -c "$1" > "$2/output" 2>&1 &
child=$!
wait "$child"; code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
echo "$code" > "$2/exit.tmp" && mv "$2/exit.tmp" "$2/exit"
"""


def _state_root() -> Path:
    return Path(os.environ["TOY_BACKEND_STATE"])


def _state(run_id: str) -> Path:
    return _state_root() / run_id


def _exit_of(state: Path) -> ExitInfo | None:
    """The run's outcome once its exit code is written; None while it runs."""
    try:
        code = int((state / "exit").read_text())
    except (OSError, ValueError):
        return None
    if (state / "cancelled").exists():
        return ExitInfo(RunStatus.KILLED, code, "cancelled")
    if code == 0:
        return ExitInfo(RunStatus.FINISHED, 0)
    return ExitInfo(RunStatus.FAILED, code, f"entry point exited with code {code}")


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ToyHandle:
    """A run seen through its state folder: the same object whether launched or attached."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def _pid(self) -> int:
        return int((self.state / "pid").read_text())

    def logs(self) -> Iterator[LogChunk]:
        offset = 0
        while True:
            ended = _exit_of(self.state) is not None  # read before draining: nothing is lost
            with contextlib.suppress(FileNotFoundError), open(self.state / "output", "rb") as f:
                f.seek(offset)
                data = f.read()
                offset += len(data)
                if data:
                    yield LogChunk("stdout", data)
            if ended:
                return
            time.sleep(0.05)

    def wait(self, timeout: float | None = None) -> ExitInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (info := _exit_of(self.state)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return ExitInfo(RunStatus.RUNNING)
            time.sleep(0.05)
        return info

    def status(self) -> RunStatus:
        info = _exit_of(self.state)
        return RunStatus.RUNNING if info is None else info.status

    def cancel(self, grace: float = 10.0) -> None:
        if _exit_of(self.state) is not None:
            return
        (self.state / "cancelled").touch()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._pid(), signal.SIGTERM)


class ToyBackend(BaseBackend):
    """Runs the command as a detached job that survives its runner."""

    name = "toy"

    def launch(self, prepared: Prepared) -> ToyHandle:
        request = prepared.request
        state = _state(request.run_id)
        state.mkdir(parents=True)
        proc = subprocess.Popen(
            ["bash", "-c", _WRAPPER, "toy-job", request.command, str(state)],
            cwd=request.work_dir,
            env={**os.environ, **request.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a job of its own: the runner's death does not reach it
        )
        (state / "pid").write_text(str(proc.pid))
        return ToyHandle(state)

    def attach(self, ref: RunRef) -> ToyHandle:
        return ToyHandle(_state(ref.run_id))

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]:
        with open(_state_root() / "reconcile.log", "a") as log:
            log.write(json.dumps([ref.run_id for ref in refs]) + "\n")
        return {ref.run_id: self._verdict(_state(ref.run_id)) for ref in refs}

    @staticmethod
    def _verdict(state: Path) -> Verdict:
        info = _exit_of(state)
        if info is not None:
            return info
        try:
            alive = _alive(int((state / "pid").read_text()))
        except (OSError, ValueError):
            return LOST
        return ExitInfo(RunStatus.RUNNING) if alive else LOST
