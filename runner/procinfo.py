"""Process liveness that survives pid reuse: a pid plus its start time in /proc."""

from __future__ import annotations

import os


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
