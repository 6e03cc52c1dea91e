"""Parsed-YAML records and capped reading; no YAML parser is imported here (keeps start-up fast)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import SpecError

KeyPath = tuple[str | int, ...]

MAX_BYTES = 1_000_000


@dataclass(frozen=True, slots=True, order=True)
class Mark:
    """A 1-based line:column position in the source file."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class YamlDoc:
    """A parsed document: plain JSON-like ``data`` plus where every key came from.

    ``marks`` maps a key path such as ``("entry_points", "main", "command")`` (list items are
    ints) to the position of that key or item; ``texts`` maps the path of every scalar to the
    text the author wrote (``1.10`` stays ``"1.10"``, ``no`` stays ``"no"``).
    """

    name: str
    data: Any
    marks: Mapping[KeyPath, Mark]
    texts: Mapping[KeyPath, str]

    def mark(self, path: KeyPath) -> Mark:
        """The position of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.marks.get(path[:end])
            if found is not None:
                return found
        return Mark(1, 1)

    def text(self, path: KeyPath) -> str | None:
        return self.texts.get(path)


def read_capped(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The file's bytes, refusing files over ``max_bytes`` before anything is parsed."""
    try:
        size = path.stat().st_size
        _check_size(path.name, size, max_bytes)
        with path.open("rb") as handle:
            # Read one byte past the cap: special files (e.g. /dev/zero) report size 0.
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from exc
    _check_size(path.name, len(data), max_bytes)
    return data


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise SpecError(
            f"{name} exceeds size limit ({size} bytes > {max_bytes} bytes)",
            hint="project spec files are small; this one is too large to be read safely",
        )
