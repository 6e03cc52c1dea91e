"""Processes in /proc: liveness that survives pid reuse, the process table, adopting orphans."""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parens: split after the last ')'
    return data[data.rindex(b")") + 2 :].split()


def process_start_time(pid: int) -> float | None:
    """The process start time in clock ticks since boot (Linux), or None if unknown."""
    fields = _stat_fields(pid)
    return float(fields[19]) if fields else None


def is_alive(pid: int, start_time: float | None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``start_time`` is known, is the same one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc: trust kill(0)
    if fields[0] == b"Z":
        return False
    return start_time is None or float(fields[19]) == start_time


class _Reaper:
    subreaper = False  # set once this process adopts its orphaned descendants


_reaper = _Reaper()
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux): a run's processes whose parent exits re-parent to
    this process instead of init, so they are still found and ended with the run.

    Only for processes that own their children (the CLI, the detached supervisor): adopted
    orphans are ended and reaped with the run. False where the OS cannot."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    _reaper.subreaper = prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _reaper.subreaper


def adopts_orphans() -> bool:
    """True once ``become_subreaper`` succeeded in this process."""
    return _reaper.subreaper


@dataclass(frozen=True)
class ProcInfo:
    """One process as /proc/<pid>/stat shows it."""

    pid: int
    state: bytes
    ppid: int
    session: int
    start: float

    @property
    def running(self) -> bool:
        return self.state not in (b"Z", b"X")


def process_table() -> dict[int, ProcInfo]:
    """Every process this one can see (Linux /proc; empty elsewhere)."""
    table: dict[int, ProcInfo] = {}
    with suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit() and (fields := _stat_fields(int(name))) is not None:
                pid = int(name)
                table[pid] = ProcInfo(
                    pid, fields[0], int(fields[1]), int(fields[3]), float(fields[19])
                )
    return table


def boot_id() -> str:
    """This boot of this machine: pids and start times mean nothing across a reboot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""
