"""Parsed-YAML records; no YAML parser is imported here (keeps start-up fast)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

KeyPath = tuple[str | int, ...]


class Mark(NamedTuple):
    """A 1-based line:column position in the source file."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class YamlDoc(NamedTuple):
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
