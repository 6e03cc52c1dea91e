"""Atomic file writes: a reader sees the old file or the whole new one, never half of one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _temp_beside(path: Path) -> Path:
    # unique per writer: two processes may write the same file at once
    return path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` when the block ends without an error (a
    temp file beside it, renamed over it); on an error ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        with open(tmp, "wb") as out:
            yield out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    with replacing(path) as out:
        out.write(data if isinstance(data, bytes) else data.encode(encoding))


def copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temp file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(target)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
