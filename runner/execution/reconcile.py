"""Runs whose runner process died are found and ended FAILED by the next command."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from runner.procinfo import is_alive
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.store import LiveRun, Store

# A runner on another host beats every 15 s; four missed beats means it is gone.
STALE_HEARTBEAT_MS = 60_000


def reconcile(store: Store) -> list[str]:
    """Mark FAILED every live run whose runner is gone; returns their ids."""
    host = socket.gethostname()
    now_ms = int(time.time() * 1000)
    lost = [run for run in store.live_runs() if _runner_gone(run, host, now_ms)]
    ended = [run.run_id for run in lost if _mark_lost(store, run)]
    _stop_orphaned_containers(lost)
    return ended


def _runner_gone(run: LiveRun, host: str, now_ms: int) -> bool:
    if run.runner_pid is None:
        return False
    if run.runner_host == host:
        return not is_alive(run.runner_pid, run.runner_start)
    return run.heartbeat_ms is not None and now_ms - run.heartbeat_ms > STALE_HEARTBEAT_MS


def _mark_lost(store: Store, run: LiveRun) -> bool:
    reason = f"runner process {run.runner_pid} on {run.runner_host} died (runner_lost)"
    return store.finish_run(run.run_id, RunStatus.FAILED, None, reason)


def _stop_orphaned_containers(lost: list[LiveRun]) -> None:
    """Containers of lost docker runs are stopped; the docker SDK is imported only if needed."""
    run_ids = {run.run_id for run in lost if run.backend == "docker"}
    if not run_ids:
        return
    try:
        from backends.docker.backend import stop_containers_of_runs
    except ImportError:
        return
    stop_containers_of_runs(run_ids)
