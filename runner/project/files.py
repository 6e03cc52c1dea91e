"""Reading a project's files: contained in the project through every link, regular, size-capped."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from runner.errors import SpecError

MAX_BYTES = 1_000_000
REGULAR = "a file"
_KINDS = {
    stat.S_IFREG: REGULAR,
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
_HINT = "runner reads only files inside the project; copy the file into the project"
# Non-blocking: opening a FIFO never waits for a writer. No controlling terminal from a tty.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def contained(root: Path, relative: str | Path, shown: str | None = None) -> Path:
    """``root / relative``, links resolved; a SpecError if that leaves ``root`` (resolved).

    Without a link on the way (the usual case) this costs one ``lstat`` per component of
    ``relative``; ``shown`` names the file in the message.
    """
    name = shown or str(relative)
    try:
        if _free_of_links(root, Path(relative)):
            return root / relative
        base = Path(os.path.realpath(root))
        real = Path(os.path.realpath(root / relative))
    except ValueError:  # a NUL byte: no file has such a name
        raise SpecError(f"{name} is not a valid file name: refused") from None
    if real.is_relative_to(base):
        return real
    if real == Path(os.path.normpath(base / relative)):
        raise SpecError(f"{name} is outside the project: refused", hint=_HINT)
    raise SpecError(f"{name} is a link to {real}, outside the project: refused", hint=_HINT)


def _free_of_links(root: Path, relative: Path) -> bool:
    """True when no component of ``relative`` below ``root`` is a link."""
    if relative.is_absolute() or ".." in relative.parts:
        return False  # rare spellings: realpath decides
    current = root
    for part in relative.parts:
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return False
        except FileNotFoundError:
            return True  # nothing exists below a missing name, links included
        except OSError:
            return False
    return True


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, for messages: "a directory", "a file", ..."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def file_kind(path: Path) -> str | None:
    """``kind_of`` the file ``path`` leads to, or None if there is none (one ``stat``)."""
    try:
        return kind_of(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def read_project_file(
    root: Path, relative: str | Path, *, max_bytes: int = MAX_BYTES, shown: str | None = None
) -> bytes:
    """The bytes of a file of the project at ``root``: contained, regular and capped."""
    return read_capped(contained(root, relative, shown), max_bytes, shown=shown)


def read_capped(path: Path, max_bytes: int = MAX_BYTES, *, shown: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, refusing files over ``max_bytes`` unread.

    Anything else (a directory, a FIFO, a device) is refused before a byte is read.
    """
    name = shown or path.name
    try:
        with open(path, "rb", opener=_checking_opener(name, max_bytes)) as handle:
            # one byte past the cap: a file that grows while it is read is still refused
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from exc
    _check_size(name, len(data), max_bytes)
    return data


def _checking_opener(name: str, max_bytes: int) -> Callable[[str, int], int]:
    """An ``open`` opener that checks what it opened (fstat) before anything reads it."""

    def opener(file: str, _flags: int) -> int:
        fd = os.open(file, _OPEN_FLAGS)
        try:
            _check_file(name, os.fstat(fd), max_bytes)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return opener


def _check_file(name: str, info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(f"{name} is {kind_of(info.st_mode)}, not a file: refused")
    _check_size(name, info.st_size, max_bytes)


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise SpecError(
            f"{name} exceeds size limit ({size} bytes > {max_bytes} bytes)",
            hint="the files runner reads from a project are small; this one is too large",
        )
