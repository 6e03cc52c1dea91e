"""Tracking store: experiments, runs, params, tags, metrics; SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

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
class RunRecord:
    """One run as ``schemas/run.schema.json`` describes it; times are ISO-8601 UTC text."""

    run_id: str
    experiment: str
    run_name: str
    status: RunStatus
    start_time: str
    end_time: str | None
    exit_code: int | None
    failure_reason: str | None
    entry_point: str
    parameters: dict[str, str]
    command: str
    source: dict[str, Any]
    environment: dict[str, Any]
    backend: str
    tags: dict[str, str]
    metrics: dict[str, float | None]  # the latest value of each key; None is NaN
    parent_run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, keys in schema order (what ``--json`` prints)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["status"] = self.status.value
        for name in ("parameters", "source", "environment", "tags", "metrics"):
            data[name] = dict(data[name])  # callers may change the copy, never the record
        return data


class RunPage(NamedTuple):
    """One page of a listing, newest first, and how many matching runs come after it."""

    runs: list[RunRecord]
    more: int  # runs after this page, counted up to a cap (see ``capped``)
    capped: bool  # True when there are more than ``more`` (the count stopped at the cap)
    next_token: str | None  # pass as ``page_token`` for the next page; None on the last one


class LiveRun(NamedTuple):
    """A run in SCHEDULED or RUNNING state, with what is needed to tell if its runner lives."""

    run_id: str
    status: RunStatus
    backend: str
    runner_pid: int | None
    runner_host: str | None
    runner_start: float | None
    heartbeat_ms: int | None


class RunnerProcess(NamedTuple):
    """A runner process that owns live runs: its pid and start time (to tell a reused pid)."""

    pid: int
    start: float | None


class MetricPoint(NamedTuple):
    """One logged value of a metric key; ``value`` None is NaN."""

    step: int
    timestamp: int
    value: float | None


class Store(Protocol):
    """The tracking store as the orchestrator, reconciler, CLI and tracking API use it."""

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

    def get_run(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it (at least 6 characters)."""
        ...

    def list_runs(
        self,
        experiment: str | None = None,
        status: str | None = None,
        limit: int = 20,
        page_token: str | None = None,
    ) -> RunPage:
        """The newest ``limit`` matching runs after ``page_token`` (a previous ``next_token``)."""
        ...

    def iter_runs(
        self, experiment: str | None = None, status: str | None = None
    ) -> Iterator[RunRecord]:
        """Every matching run, newest first, read a page at a time (bounded memory)."""
        ...

    def metric_history(
        self, run_id: str, key: str, *, after_step: int | None = None, limit: int | None = None
    ) -> Iterator[MetricPoint]:
        """A full run id's values of ``key`` by step (then logging order), read in pages."""
        ...

    def latest_metrics(self, run_id: str) -> dict[str, MetricPoint]:
        """The latest point of each metric key of a run (highest step, then timestamp)."""
        ...

    def live_runs(self) -> list[LiveRun]:
        """Every live run: for tests and tools; commands use the bounded queries below."""
        ...

    def live_run(self, run_id: str) -> LiveRun | None:
        """The run with this full id if it is live, else None."""
        ...

    def runner_processes(self, host: str) -> list[RunnerProcess]:
        """The distinct runner processes of live runs on ``host`` (one entry per process)."""
        ...

    def live_runs_of_process(self, host: str, pid: int, start: float | None) -> list[LiveRun]:
        """The live runs one runner process on ``host`` owns."""
        ...

    def stale_runs(self, older_than_ms: int, exclude_host: str) -> list[LiveRun]:
        """Live runs with a runner on another host whose heartbeat is older than the bound."""
        ...

    def backend_owned_runs(self, backend: str, limit: int) -> list[LiveRun]:
        """Up to ``limit`` live runs of ``backend`` that no runner process owns, oldest first."""
        ...

    def release_runner(self, run_id: str) -> None:
        """Forget the runner process of a live run: its backend owns it from now on."""
        ...

    def claim_interval(self, name: str, seconds: float) -> bool:
        """True (and the clock restarts) if ``seconds`` passed since ``name`` was last claimed."""
        ...

    def set_cache_key(self, run_id: str, cache_key: str) -> None:
        """Record a FINISHED run as the result of the workflow step keyed ``cache_key``."""
        ...

    def cached_run(self, cache_key: str) -> str | None:
        """The newest FINISHED run recorded under ``cache_key``, or None (an indexed lookup)."""
        ...

    def child_runs(self, parent_run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``parent_run_id`` (a full id), oldest first."""
        ...

    def close(self) -> None: ...
