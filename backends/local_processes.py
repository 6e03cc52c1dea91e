"""A local run's processes (session, cgroup, adopted orphans), found and ended together."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runner.procinfo import ProcInfo, adopts_orphans, boot_id, process_table

RECORD_FILE = "local-processes.json"
POLL_SECONDS = 0.05
KILL_WAIT_SECONDS = 10.0  # how long SIGKILLed processes may take to be gone


class RunCgroup:
    """A cgroup v2 group of one run under the runner's own (when it may create one): it holds
    even the processes that left the run's session, and is killed whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # bytes, prepared here: the forked child only writes them (no allocation, no imports)
        self.procs_file = os.fsencode(path / "cgroup.procs")

    @classmethod
    def create(cls, run_id: str) -> RunCgroup | None:
        own = own_cgroup()
        if own is None:
            return None
        path = own / f"runner-{run_id}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
        except OSError:
            return None  # not delegated to us: the session and adopted orphans must do
        return cls(path)

    def pids(self) -> set[int]:
        try:
            return {int(pid) for pid in (self.path / "cgroup.procs").read_text().split()}
        except (OSError, ValueError):
            return set()

    def kill(self) -> None:
        try:
            (self.path / "cgroup.kill").write_text("1")  # Linux 5.14+: atomic, forks included
        except OSError:
            _send(self.pids(), signal.SIGKILL)

    def remove(self) -> None:
        with suppress(OSError):  # still populated: a later reconcile tries again
            self.path.rmdir()


def own_cgroup() -> Path | None:
    """The directory of this process's cgroup v2 group, if cgroup v2 is mounted."""
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mount = next((_mount_point(line) for line in f if " - cgroup2 " in line), None)
    except OSError:
        return None
    if own is None or mount is None or own.endswith("(deleted)"):
        return None
    return Path(mount) / own.lstrip("/")


def _mount_point(mountinfo_line: str) -> str:
    return mountinfo_line.split()[4]


def enter_cgroup(procs_file: bytes) -> None:
    """In the forked child before exec: join the run's cgroup (silently not, if refused)."""
    try:
        fd = os.open(procs_file, os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"0")
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Recorded:
    """What the runner writes in the run's artifacts at launch, to end the run's processes
    from another command if the runner dies: the host and boot (pids mean nothing elsewhere),
    the session leader's pid (= process group = session id) and start time, the cgroup."""

    host: str
    boot: str
    leader: int
    start: float | None
    cgroup: str | None

    def save(self, artifacts_dir: Path) -> None:
        with suppress(OSError):  # a full disk: the run goes on, only this safety net is lost
            (artifacts_dir / RECORD_FILE).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, artifacts_dir: Path) -> Recorded | None:
        try:
            data: dict[str, Any] = json.loads((artifacts_dir / RECORD_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def here(self) -> bool:
        return self.host == socket.gethostname() and self.boot == boot_id()


class RunProcesses:
    """The processes of one run: its session (the leader's pid is its session and group id),
    its cgroup if any, and — when this process adopts orphans — every descendant of those."""

    def __init__(self, leader: int, start: float | None, cgroup: RunCgroup | None) -> None:
        self.leader, self.start, self.cgroup = leader, start, cgroup
        self._adopted: set[int] = set()

    def find(self) -> set[int]:
        """The run's processes still running (not zombies), the leader included."""
        table = process_table()
        roots = {p.pid for p in table.values() if p.session == self.leader and self._ours(p)}
        roots |= self.cgroup.pids() if self.cgroup else set()
        roots |= self._orphans(table)
        return {pid for pid in _with_descendants(roots, table) if table[pid].running}

    def signal(self, sig: signal.Signals) -> None:
        if sig is signal.SIGKILL and self.cgroup is not None:
            self.cgroup.kill()
        _send(self.find(), sig)

    def end(self, grace: float) -> None:
        """SIGTERM what is left, SIGKILL it after ``grace`` seconds; returns once all are gone."""
        if not self.find():  # the usual case: the entry point left nothing behind
            self._release()
            return
        self.signal(signal.SIGTERM)
        _wait_gone(self, grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL every process of the run, whatever its leader does; wait until they are gone
        (new forks included; a process stuck in the kernel is given up on after a while)."""
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while self.find() and time.monotonic() < deadline:
            self.signal(signal.SIGKILL)
            time.sleep(POLL_SECONDS)
        self._release()

    def _release(self) -> None:
        self._reap()
        if self.cgroup is not None:
            self.cgroup.remove()

    def _ours(self, proc: ProcInfo) -> bool:
        # a session id outlives its leader; only a process started after ours can carry it
        return self.start is None or proc.start >= self.start

    def _orphans(self, table: dict[int, ProcInfo]) -> set[int]:
        """Processes of the run this process adopted: its children, not the leader, started
        since (only in a runner that adopts orphans: its children are all its runs')."""
        if not adopts_orphans():
            return set()
        me = os.getpid()
        found = {p.pid for p in table.values() if p.ppid == me and p.pid != self.leader}
        self._adopted |= {pid for pid in found if self._ours(table[pid])}
        return self._adopted & set(table)

    def _reap(self) -> None:
        for pid in list(self._adopted):  # our children now: theirs to reap is ours
            with suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def end_recorded(artifacts_dir: Path) -> None:
    """Kill what is left of a lost run's processes, from the record its runner left."""
    recorded = Recorded.load(artifacts_dir)
    if recorded is None or not recorded.here():
        return
    cgroup = RunCgroup(Path(recorded.cgroup)) if recorded.cgroup else None
    if not _leader_reused(recorded):
        RunProcesses(recorded.leader, recorded.start, cgroup).kill()
    elif cgroup is not None:
        cgroup.kill()
        cgroup.remove()


def _leader_reused(recorded: Recorded) -> bool:
    """True if the leader's pid now names another process. While any process of the run's
    session lives, its id cannot be given to a new process; so a live process with that pid
    and another start time means the session is gone and its id reused."""
    current = process_table().get(recorded.leader)
    return current is not None and recorded.start is not None and current.start != recorded.start


def _with_descendants(roots: Iterable[int], table: dict[int, ProcInfo]) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = set(), [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def _send(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(processes: RunProcesses, seconds: float) -> bool:
    """Poll until none of the run's processes runs; False if some still do after ``seconds``."""
    deadline = time.monotonic() + seconds
    while processes.find():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True
