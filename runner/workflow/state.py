"""What the scheduler knows about each step while a workflow runs."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.execution.plan import Plan
    from runner.workflow.spec import StepSpec

# pending → running → finished | failed | killed; pending → cached | skipped
DONE = frozenset({"finished", "cached", "failed", "killed", "skipped"})
SUCCEEDED = frozenset({"finished", "cached"})


@dataclass
class StepState:
    spec: StepSpec
    status: str = "pending"
    run_id: str | None = None  # this step's (latest) run
    source_run: str | None = None  # where its outputs are: its own run, or the one it reuses
    key: str | None = None
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    reason: str | None = None
    not_before: float = 0.0  # a retry waits for its backoff
    process: subprocess.Popen[bytes] | None = None
    plan: Plan | None = None
    deadline: float | None = None
    timed_out: bool = False
    checked: float = 0.0  # when the store was last asked whether the run has ended

    @property
    def name(self) -> str:
        return self.spec.name

    def seconds(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.monotonic()) - self.started

    def summary(self) -> dict[str, Any]:
        """As --json and the workflow run's artifact report it."""
        seconds = self.seconds()
        return {
            "status": self.status,
            "run_id": self.run_id,
            "cached_from": self.source_run if self.status == "cached" else None,
            "attempts": self.attempt,
            "seconds": None if seconds is None else round(seconds, 3),
            "reason": self.reason,
            "cache_key": self.key,
        }
