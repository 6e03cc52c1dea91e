"""Tracking store: experiments, runs, params, tags, metrics; SQLite or any SQLAlchemy URL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.status import RunStatus

# (key, value, step, timestamp in ms since the epoch)
Metric = tuple[str, float, int, int]


@dataclass(frozen=True)
class NewRun:
    """What the orchestrator knows when it creates a run (after spec, params, source succeeded)."""

    experiment: str
    entry_point: str
    command: str
    backend: str
    parameters: Mapping[str, str]
    source: Mapping[str, Any]
    environment: Mapping[str, Any]
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    parent_run_id: str | None = None
    runner_pid: int | None = None
    runner_host: str | None = None
    runner_start: float | None = None  # process start time, to tell a reused pid apart


@dataclass(frozen=True)
class LiveRun:
    """A run in SCHEDULED or RUNNING state, with what is needed to tell if its runner lives."""

    run_id: str
    status: RunStatus
    backend: str
    runner_pid: int | None
    runner_host: str | None
    runner_start: float | None
    heartbeat_ms: int | None


class Store(Protocol):
    """The tracking store as the orchestrator, CLI and tracking API use it."""

    def create_run(self, new: NewRun) -> str: ...

    def start_run(self, run_id: str) -> None: ...

    def update_run(
        self,
        run_id: str,
        *,
        environment: Mapping[str, Any] | None = None,
        command: str | None = None,
        runner_pid: int | None = None,
        runner_host: str | None = None,
        runner_start: float | None = None,
    ) -> None: ...

    def finish_run(
        self, run_id: str, status: RunStatus, exit_code: int | None, reason: str | None
    ) -> bool: ...

    def heartbeat(self, run_id: str) -> None: ...

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None: ...

    def get_run(self, run_id: str) -> dict[str, Any]: ...

    def list_runs(
        self, experiment: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...

    def live_runs(self) -> list[LiveRun]: ...

    def close(self) -> None: ...
