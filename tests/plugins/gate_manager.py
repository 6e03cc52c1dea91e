"""A test environment manager whose build waits at a gate: until the file GATE_FILE names exists."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.envs.base import Activation, BaseEnvManager, EnvLock, Progress
from runner.project.records import ProjectSpec

GATE_VARIABLE = "GATE_FILE"


class GateManager(BaseEnvManager):
    name = "gate"
    kinds = ("system", "python_env")

    def lock(self, spec: ProjectSpec, *, progress: Progress, refresh: bool) -> EnvLock:
        # the gate's path is the lock: each test builds an env of its own
        gate = os.environ[GATE_VARIABLE]
        return EnvLock(content=gate, interpreter="gate-1", packages=(), source="gate")

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
        progress("waiting for the gate")
        while not Path(lock.content).exists():
            time.sleep(0.05)
        progress("the gate is open")
        (prefix / "opened").write_text("yes")
        return {}

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
        return None if (prefix / "opened").is_file() else "it was never opened"

    def activate(self, prefix: Path) -> Activation:
        return Activation()
