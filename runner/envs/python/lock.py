"""Locks: pinned, hashed requirement lines; the committed ``runner.lock`` file format."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from runner.atomic import write_atomically
from runner.errors import SpecError
from runner.project.files import read_project_file

# The committed lock lives next to MLproject; `runner lock DIR` writes it.
LOCK_NAME = "runner.lock"
MAX_LOCK_BYTES = 10_000_000  # thousands of hashed pins fit; a runaway file is refused unread
_HEADER = (
    "# runner lock v1: this project's Python environment, pinned. `runner run` uses it as is.\n"
    "# Regenerate with `runner lock <project dir>` after changing the env file.\n"
)
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*"
    r"(?P<version>[^\s;\\]+)"
)


@dataclass(frozen=True)
class Lock:
    """Requirement lines exactly as the installer reads them, and where they came from."""

    text: str
    python: str = ""  # the interpreter version it was resolved for
    inputs: str = ""  # PythonSpec.digest() of the spec it was resolved from
    source: str = "resolved"  # "resolved" or "committed"

    def requirements(self) -> list[str]:
        """Logical requirement lines (continuations joined; comments and options left out)."""
        joined = re.sub(r"\\\n", " ", self.text)
        lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for line in joined.splitlines())
        return [line for line in lines if line and not line.startswith("-")]

    def packages(self) -> list[str]:
        """``name==version`` per pinned requirement, names normalised (PEP 503)."""
        out = []
        for line in self.requirements():
            match = _PIN.match(line)
            if match:
                out.append(f"{normalize_name(match['name'])}=={match['version']}")
        return sorted(out)

    def has_hashes(self) -> bool:
        reqs = self.requirements()
        return bool(reqs) and all("--hash=" in line for line in reqs)

    def render(self) -> str:
        """The committed file: a short header, then the requirement lines."""
        meta = f"# python: {self.python}\n# inputs: {self.inputs}\n"
        return _HEADER + meta + self.text


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normalize_text(text: str) -> str:
    """Line endings and trailing space never change what is installed, so not the key either."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    body = "\n".join(lines).strip("\n")
    return body + "\n" if body else ""


def lock_path(root: Path) -> Path:
    return root / LOCK_NAME


def read_committed_lock(root: Path) -> Lock | None:
    """The project's committed lock, if it has one; its leading comment block is metadata.

    A lock that leads out of the project, or is not a file, is refused (never read).
    """
    if not os.path.lexists(lock_path(root)):
        return None
    try:
        text = read_project_file(root, LOCK_NAME, max_bytes=MAX_LOCK_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{LOCK_NAME}: invalid UTF-8 at byte offset {exc.start}") from exc
    return parse_lock(text, source="committed")


def parse_lock(text: str, *, source: str) -> Lock:
    lines = normalize_text(text).splitlines(keepends=True)
    meta: dict[str, str] = {}
    while lines and lines[0].startswith("#"):
        key, _, value = lines.pop(0).lstrip("# ").partition(":")
        meta[key.strip()] = value.strip()
    return Lock("".join(lines), meta.get("python", ""), meta.get("inputs", ""), source)


def write_lock(root: Path, lock: Lock) -> Path:
    """Write ``runner.lock`` atomically (a reader never sees half a file)."""
    path = lock_path(root)
    write_atomically(path, lock.render())
    return path
