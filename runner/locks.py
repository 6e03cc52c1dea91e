"""Inter-process file locks: exclusive build/migration locks and shared/exclusive leases."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class LockTimeout(Exception):
    """The lock was not acquired within the timeout; ``path`` names the lock file."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:.0f}s waiting for {path}")
        self.path = path
        self.timeout = timeout


@contextlib.contextmanager
def exclusive_lock(
    path: Path, *, timeout: float, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing); ``on_wait`` runs once if another
    process holds it. Raises LockTimeout after ``timeout`` seconds."""
    # filelock takes tens of ms to import: only the paths that lock pay for it
    import filelock

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if on_wait is not None:
            on_wait()
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise LockTimeout(path, timeout) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def try_exclusive_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` if it is free (yields True), without waiting."""
    import filelock

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def flock(path: Path, *, shared: bool, wait: bool = True) -> Iterator[bool]:
    """A flock on ``path`` (which must be creatable): shared or exclusive, blocking or not.

    Yields True when held; with ``wait=False`` yields False when another holder conflicts.
    Raises FileNotFoundError when the file's directory is gone.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
