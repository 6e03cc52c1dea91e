"""Runs whose runner process is gone: their backend says what became of them; we record it.

Bounded work per command: the runner processes of this host are checked once each (not once per
run), other hosts' runs only when their heartbeat is stale, and runs a backend kept alive after
their runner went away are asked about in one batch per backend, at most once per interval.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from runner.atomic import replacing
from runner.backend import LOST, ExitInfo, RunRef, Verdict, available_backends, load_backend
from runner.errors import RunnerError
from runner.home import artifacts_root, run_artifacts_dir
from runner.procinfo import is_alive
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.store import LiveRun, Store

# A runner on another host beats every 15 s; four missed beats means it is gone.
STALE_HEARTBEAT_MS = 60_000
# Runs kept alive by a backend are asked about at most this often, in one batch per backend.
BACKEND_POLL_SECONDS = 30.0
BACKEND_BATCH = 10_000  # one question for a busy cluster's live jobs


def reconcile(store: Store) -> list[str]:
    """Record what became of every run whose runner died; returns the ids that ended."""
    orphaned = [*_lost_on_this_host(store), *_stale_elsewhere(store)]
    ended = _settle(store, orphaned, released=False)
    for backend in available_backends():
        ended += _poll_released(store, backend, BACKEND_POLL_SECONDS)
    return ended


def refresh(store: Store, backend: str) -> list[str]:
    """Ask ``backend`` about its released runs now (a command is about to show them)."""
    return _poll_released(store, backend, 0.0)


def _poll_released(store: Store, backend: str, interval: float) -> list[str]:
    """One batched question to a backend about the runs it kept alive, at most once per
    ``interval`` (recorded in the store, so many short commands do not repeat it)."""
    if not _released(store, backend, 1):  # the usual case: nothing released, nothing written
        return []
    if not store.claim_interval(f"reconcile:{backend}", interval):
        return []
    return _settle(store, _released(store, backend, BACKEND_BATCH), released=True)


def _released(store: Store, backend: str, limit: int) -> list[LiveRun]:
    owned = store.backend_owned_runs(backend, limit)
    return [run for run in owned if is_kept(run)]


def is_kept(run: LiveRun) -> bool:
    """A live run without a runner that its backend keeps: RUNNING, or SCHEDULED for a
    queueing backend (its job waits in the queue). Other SCHEDULED runs without a runner
    were never launched by one: there is nothing to ask a backend about them."""
    if run.status is RunStatus.RUNNING:
        return True
    if run.status is not RunStatus.SCHEDULED:
        return False
    from runner.execution.orchestrator import queues

    try:
        return queues(load_backend(run.backend))
    except RunnerError:
        return False


def _lost_on_this_host(store: Store) -> list[LiveRun]:
    host = socket.gethostname()
    dead = [p for p in store.runner_processes(host) if not is_alive(p.pid, p.start)]
    return [run for p in dead for run in store.live_runs_of_process(host, p.pid, p.start)]


def _stale_elsewhere(store: Store) -> list[LiveRun]:
    return store.stale_runs(STALE_HEARTBEAT_MS, exclude_host=socket.gethostname())


def _settle(store: Store, runs: Sequence[LiveRun], *, released: bool) -> list[str]:
    ended: list[str] = []
    for backend, group in _by_backend(runs).items():
        verdicts = _ask(backend, group)
        if verdicts is None:
            continue  # undecided here: a process that can ask the backend will settle them
        for run in group:
            if _apply(store, run, verdicts.get(run.run_id, LOST), released):
                ended.append(run.run_id)
    return ended


def _by_backend(runs: Iterable[LiveRun]) -> dict[str, list[LiveRun]]:
    groups: dict[str, list[LiveRun]] = {}
    for run in runs:
        groups.setdefault(run.backend, []).append(run)
    return groups


def _ask(backend_name: str, runs: Sequence[LiveRun]) -> dict[str, Verdict] | None:
    """The backend's verdicts, or None when it cannot be asked from here (not installed in
    this environment, or its engine or cluster does not answer): nothing is decided then."""
    root = artifacts_root()  # once: it is a mkdir and a resolve
    try:
        return load_backend(backend_name).reconcile([ref_of(run, root) for run in runs])
    except RunnerError:
        return None


def ref_of(run: LiveRun, root: Path | None = None) -> RunRef:
    """What a backend is told about a recorded run: id, status, its config, its artifacts."""
    artifacts = (root or artifacts_root()) / run.run_id
    return RunRef(run.run_id, run.status, _launch_config(artifacts / "plan.json"), artifacts)


def _launch_config(plan_file: Path) -> dict[str, object]:
    try:
        with open(plan_file, encoding="utf-8") as f:
            config = json.load(f).get("backend_config") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return config if isinstance(config, dict) else {}


def _apply(store: Store, run: LiveRun, verdict: Verdict, released: bool) -> bool:
    """Record one verdict; True when the run ended."""
    if verdict is LOST:
        return store.finish_run(run.run_id, RunStatus.FAILED, None, _lost_reason(run, released))
    if not verdict.status.is_terminal:
        if verdict.status is RunStatus.RUNNING and run.status is RunStatus.SCHEDULED:
            store.start_run(run.run_id)  # its queued job has started meanwhile
        if not released:
            store.release_runner(run.run_id)  # the backend keeps it: any process may attach
        return False
    if released:
        keep_backend_logs(run)
    return _finish(store, run.run_id, verdict)


def _finish(store: Store, run_id: str, info: ExitInfo) -> bool:
    return store.finish_run(run_id, info.status, info.exit_code, info.reason)


def keep_backend_logs(run: LiveRun) -> None:
    """Replace the run's output.log by its backend's copy, which is complete from the start
    (the runner that died streamed only a prefix). Best effort: the old log stays on failure."""
    from runner.execution.orchestrator import LOG_FILE

    with suppress(RunnerError, OSError):
        handle = load_backend(run.backend).attach(ref_of(run))
        with replacing(run_artifacts_dir(run.run_id) / LOG_FILE) as out:
            for chunk in handle.logs():
                out.write(chunk.data)


def _lost_reason(run: LiveRun, released: bool) -> str:
    if released:
        return f"its {run.backend} job is gone and its outcome unknown (runner_lost)"
    return f"runner process {run.runner_pid} on {run.runner_host} died (runner_lost)"
