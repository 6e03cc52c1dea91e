"""Keeps the kernel's cgroup-migration lock fast while a local launch is coming."""

from __future__ import annotations

import os
import threading
import time

# The first write to a cgroup.procs file after a quiet spell waits for an RCU grace period
# (5-25 ms measured on this kernel: the migration lock's rcu_sync goes back to idle); a write
# within ~10 ms of another returns in ~0.1 ms. The run's child joins its cgroup before exec, on
# the launch's critical path. Re-writing this process into the cgroup it is already in, every
# few ms from the plan until the launch, pays that wait in the background instead.
INTERVAL_SECONDS = 0.004
HOLD_SECONDS = 0.5  # how long one request keeps the lock warm (a plan's checks, an env lookup)

_lock = threading.Lock()
_deadline = 0.0
_thread: threading.Thread | None = None


def keep_warm(own_procs_file: str, seconds: float = HOLD_SECONDS) -> None:
    """Keep migrations fast for the next ``seconds``; starts the warming thread if needed."""
    global _deadline, _thread
    with _lock:
        _deadline = max(_deadline, time.monotonic() + seconds)
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(
            target=_warm, args=(own_procs_file,), name="cgroup-warmup", daemon=True
        )
        _thread.start()


def _warm(own_procs_file: str) -> None:
    pid = str(os.getpid()).encode()
    while time.monotonic() < _deadline:
        try:
            fd = os.open(own_procs_file, os.O_WRONLY)
            try:
                os.write(fd, pid)  # a move into the cgroup it is in: nothing changes but timing
            finally:
                os.close(fd)
        except OSError:
            return  # not ours to write: launches simply pay the wait, as without this
        time.sleep(INTERVAL_SECONDS)
