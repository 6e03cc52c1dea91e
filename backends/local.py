"""The local backend: the entry point as a child process group on this machine."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Literal

from runner.backend import BaseBackend, ExitInfo, LogChunk, Prepared
from runner.errors import BackendError
from runner.status import RunStatus

_CHUNK = 65536
_PR_SET_PDEATHSIG = 1


def _pdeathsig_setter() -> Callable[[], None] | None:
    """A pre-exec hook: if the runner is SIGKILLed, the kernel SIGTERMs the child.

    libc is loaded here, in the parent, because importing in the forked child could deadlock.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the reconciler still marks the run FAILED
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _exit_info(returncode: int, cancelled: bool) -> ExitInfo:
    if cancelled:
        return ExitInfo(RunStatus.KILLED, returncode, "cancelled")
    if returncode == 0:
        return ExitInfo(RunStatus.FINISHED, 0)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return ExitInfo(RunStatus.FAILED, returncode, f"entry point killed by {name}")
    return ExitInfo(RunStatus.FAILED, returncode, f"entry point exited with code {returncode}")


class LocalRunHandle:
    """A running child process group; output is read by two threads into one queue."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._queue: queue.Queue[LogChunk | None] = queue.Queue()
        self._cancelled = False
        self._readers = [
            self._start_reader(proc.stdout, "stdout"),
            self._start_reader(proc.stderr, "stderr"),
        ]

    def _start_reader(
        self, pipe: IO[bytes] | None, stream: Literal["stdout", "stderr"]
    ) -> threading.Thread:
        thread = threading.Thread(target=self._pump, args=(pipe, stream), daemon=True)
        thread.start()
        return thread

    def _pump(self, pipe: IO[bytes] | None, stream: Literal["stdout", "stderr"]) -> None:
        try:
            if pipe is not None:
                read = getattr(pipe, "read1", pipe.read)
                while data := read(_CHUNK):
                    self._queue.put(LogChunk(stream, data))
        finally:
            self._queue.put(None)

    def logs(self) -> Iterator[LogChunk]:
        open_streams = len(self._readers)
        while open_streams:
            chunk = self._queue.get()
            if chunk is None:
                open_streams -= 1
            else:
                yield chunk

    def wait(self, timeout: float | None = None) -> ExitInfo:
        try:
            returncode = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return ExitInfo(self.status())
        for reader in self._readers:
            reader.join(timeout=5)
        return _exit_info(returncode, self._cancelled)

    def status(self) -> RunStatus:
        returncode = self._proc.poll()
        if returncode is None:
            return RunStatus.RUNNING
        return _exit_info(returncode, self._cancelled).status

    def cancel(self, grace: float = 10.0) -> None:
        if self._proc.poll() is not None:
            return
        self._cancelled = True
        self._signal_group(signal.SIGTERM)
        # escalate off-thread so a signal handler calling cancel() never blocks
        threading.Thread(target=self._kill_after, args=(grace,), daemon=True).start()

    def _kill_after(self, grace: float) -> None:
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)


class LocalBackend(BaseBackend):
    """Runs ``bash -c <command>`` in the project directory, in its own process group.

    Its runs live only as long as their runner process, so it keeps the default ``attach``
    (refused) and ``reconcile`` (a run whose runner died is lost).
    """

    name = "local"

    def launch(self, prepared: Prepared) -> LocalRunHandle:
        request = prepared.request
        try:
            proc = subprocess.Popen(
                ["bash", "-c", request.command],
                cwd=request.work_dir,
                env=_child_env(request.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group: cancel reaches grandchildren
                preexec_fn=_pdeathsig_setter(),
            )
        except OSError as exc:
            raise BackendError(f"could not start the entry point: {exc}") from exc
        return LocalRunHandle(proc)
