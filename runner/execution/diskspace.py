"""A full disk: telling it apart, an output log that stops on it, a reserve for the last writes."""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from runner.home import tracking_uri

RESERVE_BYTES = 1 << 20  # room for the final writes of a SQLite store: the status, a warning
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_SQLITE_FULL = 13


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` or what caused it is a full disk (or quota), from a file or SQLite."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return True
        if getattr(seen, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class DiskReserve:
    """A small file allocated beside the SQLite store as a run starts and deleted to make room
    when the disk fills: the store can then still record how the run ended."""

    def __init__(self, run_id: str) -> None:
        self.path = _reserve_path(run_id)
        if self.path is not None and not _allocate(self.path):
            self.path = None

    def release(self) -> bool:
        """Delete the reserve; True if that freed anything."""
        path, self.path = self.path, None
        if path is None:
            return False
        with suppress(OSError):
            path.unlink()
        return True


def _reserve_path(run_id: str) -> Path | None:
    """Beside the SQLite file; a server-backed store needs no room on this machine."""
    from runner.errors import StoreError
    from runner.store.migrate import sqlite_path

    try:
        database = sqlite_path(tracking_uri())
    except StoreError:
        return None  # the store itself reports a bad URI
    return None if database is None else database.parent / f".reserve-{run_id}"


def _allocate(path: Path) -> bool:
    if not hasattr(os, "posix_fallocate"):
        return False  # not on this OS: no reserve, the final write is retried all the same
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:  # already full, or a filesystem that cannot allocate: go on without one
        with suppress(OSError):
            path.unlink()
        return False
    finally:
        os.close(fd)
    return True


class OutputLog:
    """A run's output.log, its complete output; on a full disk it stops being written (the
    terminal still gets everything) and ``full`` says so."""

    def __init__(self, path: Path) -> None:
        self.full = False
        self._file: BinaryIO | None = None
        try:
            self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            self._full_or_raise(exc)

    def write(self, data: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            self._full_or_raise(exc)

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with suppress(OSError):  # what a full disk could not take is already lost
                file.close()

    def _full_or_raise(self, exc: OSError) -> None:
        if not is_disk_full(exc):
            raise exc
        self.full = True
        self.close()
