"""A toy environment manager: its env is one script in bin/ that greets with the locked word."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.envs.base import Activation, BaseEnvManager, EnvLock, Progress
from runner.project.records import ProjectSpec

LOCK_FILE = "toy.lock"  # optional, in the project: the word the tool says
# Relative to the script itself: the env is built in a temp dir and renamed into place.
TOOL = '#!/bin/sh\necho "toy says $(cat "$(dirname "$0")/../greeting") from $TOY_ENV"\n'


class ToyManager(BaseEnvManager):
    name = "toy"
    aliases = ("toybox",)
    kinds = ("system", "python_env")

    def lock(self, spec: ProjectSpec, *, progress: Progress, refresh: bool) -> EnvLock:
        path = spec.root / LOCK_FILE
        word = path.read_text().strip() if path.is_file() else "hello"
        packages = (f"toy-tool=={word}",)
        return EnvLock(content=word, interpreter="toy-1", packages=packages, source="toy")

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
        progress("building the toy")
        (prefix / "greeting").write_text(lock.content)
        tool = prefix / "bin" / "toy-tool"
        tool.parent.mkdir()
        tool.write_text(TOOL)
        tool.chmod(0o755)
        return {"tool": "toy-tool"}

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
        return None if (prefix / "greeting").is_file() else "its greeting is missing"

    def activate(self, prefix: Path) -> Activation:
        return Activation(path=(str(prefix / "bin"),), variables={"TOY_ENV": prefix.name[:12]})
