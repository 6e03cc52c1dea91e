"""The local backend: the entry point as a child process session on this machine."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

from backends.cgroup_warmup import keep_warm
from backends.local_processes import (
    Recorded,
    RunCgroup,
    RunProcesses,
    end_recorded,
    enter_cgroup,
    own_cgroup,
)
from runner.backend import (
    LOST,
    BaseBackend,
    ExitInfo,
    LaunchRequest,
    LogChunk,
    Prepared,
    RunRef,
    Verdict,
)
from runner.errors import BackendError
from runner.procinfo import boot_id, process_start_time
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.project.records import ProjectSpec

_CHUNK = 65536
QUEUE_CHUNKS = 16  # output read but not yet taken: at most 1 MiB, the reader waits past that
LEFTOVER_GRACE_SECONDS = 3.0  # for what the entry point left running when it exited
STREAM_END_SECONDS = 2.0  # for pipes held open by a process that escaped the run
_PR_SET_PDEATHSIG = 1


def _pre_exec(cgroup: RunCgroup | None) -> Callable[[], None] | None:
    """A pre-exec hook: join the run's cgroup, and if the runner is SIGKILLed, the kernel
    SIGTERMs the child (a later command kills the rest, see ``LocalBackend.reconcile``).

    libc is loaded here, in the parent, because importing in the forked child could deadlock.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the reconciler still marks the run FAILED
        return None
    procs_file = cgroup.procs_file if cgroup is not None else None

    def hook() -> None:
        if procs_file is not None:
            enter_cgroup(procs_file)
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _warm_cgroup_migration() -> None:
    own = own_cgroup()
    if own is not None:
        keep_warm(str(own / "cgroup.procs"))


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
    """A running child session. Two threads read its output into a small bounded queue; a
    third waits for the leader, then ends whatever the run left: the run is over (``wait``
    returns) only once none of its processes is left."""

    def __init__(self, proc: subprocess.Popen[bytes], processes: RunProcesses) -> None:
        self._proc, self._processes = proc, processes
        self._queue: queue.Queue[LogChunk | None] = queue.Queue(QUEUE_CHUNKS)
        self._cancelled = self._abandoned = False
        self._returncode = 0
        self._ended = threading.Event()
        self._readers = [
            self._start(self._pump, proc.stdout, "stdout"),
            self._start(self._pump, proc.stderr, "stderr"),
        ]
        self._start(self._reap)

    @staticmethod
    def _start(target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    def _pump(self, pipe: IO[bytes] | None, stream: Literal["stdout", "stderr"]) -> None:
        try:
            if pipe is not None:
                read = getattr(pipe, "read1", pipe.read)
                while data := read(_CHUNK):
                    self._put(LogChunk(stream, data))
        finally:
            self._put(None)

    def _put(self, item: LogChunk | None) -> None:
        """Wait for room (the entry point then waits on its pipe): memory stays bounded."""
        while not self._abandoned:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _reap(self) -> None:
        self._returncode = self._proc.wait()
        try:
            self._processes.end(LEFTOVER_GRACE_SECONDS)
        finally:
            self._ended.set()  # a failure here must not leave wait() blocked forever

    def logs(self) -> Iterator[LogChunk]:
        open_streams = len(self._readers)
        while open_streams:
            try:
                chunk = self._queue.get(timeout=STREAM_END_SECONDS)
            except queue.Empty:
                if self._ended.is_set():
                    return  # all of the run is gone, yet a pipe is open: held by an escapee
                continue
            if chunk is None:
                open_streams -= 1
            else:
                yield chunk

    def wait(self, timeout: float | None = None) -> ExitInfo:
        if not self._ended.wait(timeout):
            return ExitInfo(RunStatus.RUNNING)
        self._abandoned = True  # no more reading from here: a blocked reader must not wait
        return _exit_info(self._returncode, self._cancelled)

    def status(self) -> RunStatus:
        if not self._ended.is_set():
            return RunStatus.RUNNING
        return _exit_info(self._returncode, self._cancelled).status

    def cancel(self, grace: float = 10.0) -> None:
        if self._ended.is_set():
            return
        self._cancelled = True
        self._processes.signal(signal.SIGTERM)
        # escalate off-thread so a signal handler calling cancel() never blocks
        self._start(self._kill_after, grace)

    def _kill_after(self, grace: float) -> None:
        if not self._ended.wait(grace):
            self._processes.kill()  # the whole run, whatever its leader does


class LocalBackend(BaseBackend):
    """Runs ``bash -c <command>`` in the project directory, in a session of its own.

    Its runs live only as long as their runner process. Nothing outlives them: at the end the
    runner kills what is left of the session, the run's cgroup (if one could be made) and the
    orphans it adopted; if the runner itself dies, ``reconcile`` kills them from the record
    written at launch, before the run is marked lost.
    """

    name = "local"

    def preflight(self, spec: ProjectSpec, config: Mapping[str, Any]) -> None:
        """A launch is coming: the child's move into its cgroup should not wait on the kernel."""
        _warm_cgroup_migration()

    def prepare(self, request: LaunchRequest) -> Prepared:
        _warm_cgroup_migration()  # again: an environment build may have taken longer
        return Prepared(request)

    def launch(self, prepared: Prepared) -> LocalRunHandle:
        request = prepared.request
        cgroup = RunCgroup.create(request.run_id)
        try:
            proc = subprocess.Popen(
                ["bash", "-c", request.command],
                cwd=request.work_dir,
                env=_child_env(request.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own session: every descendant can be found
                preexec_fn=_pre_exec(cgroup),
            )
        except OSError as exc:
            if cgroup is not None:
                cgroup.remove()
            raise BackendError(f"could not start the entry point: {exc}") from exc
        start = process_start_time(proc.pid)
        if request.artifacts_dir is not None:
            where = str(cgroup.path) if cgroup else None
            Recorded(socket.gethostname(), boot_id(), proc.pid, start, where).save(
                request.artifacts_dir
            )
        return LocalRunHandle(proc, RunProcesses(proc.pid, start, cgroup))

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]:
        """A run whose runner died is lost; what is left of its processes is killed first."""
        for ref in refs:
            end_recorded(ref.artifacts_dir)
        return dict.fromkeys((ref.run_id for ref in refs), LOST)
