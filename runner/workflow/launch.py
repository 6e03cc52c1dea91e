"""Start a submitted step run in its own runner process (the detached supervisor).

Why processes, not threads: the orchestrator's signal handling is process-wide (interrupts.py
keeps one deferral state and installs handlers in the main thread only), each run owns its
children as a subreaper, and ``runner runs cancel <step-run>`` signals the run's runner process,
which must then be the step's own and not the whole workflow. One supervisor per step gives
each step all of that unchanged, on any backend, and a step outlives a crash of the workflow
runner (resume then picks up its result).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runner.execution.batch import BATCH_VARIABLE
from runner.execution.lifecycle import SECRETS_VARIABLE
from runner.home import run_artifacts_dir

if TYPE_CHECKING:
    from runner.execution.plan import Plan
    from runner.store import Store


def start_supervisor(
    run_id: str, store: Store, plan: Plan, batch: str | None = None
) -> subprocess.Popen[bytes]:
    """The step's runner process; it records the run's end itself (the caller reaps it).
    ``batch`` names the batch the run joins (runner.execution.batch)."""
    from runner.procinfo import process_start_time

    env = dict(os.environ) if plan.secrets or batch else None
    if env is not None and plan.secrets:
        env[SECRETS_VARIABLE] = plan.secrets_json()
    if env is not None and batch:
        env[BATCH_VARIABLE] = batch
    with open(run_artifacts_dir(run_id) / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.execution.supervisor", run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a ^C reaches the workflow runner, which cancels each step
            env=env,
        )
    store.update_run(run_id, runner_pid=proc.pid, runner_start=process_start_time(proc.pid))
    return proc


class Launcher:
    """Starts submitted step runs, one supervisor each.

    Runs on a backend that ``batches`` (see ``BaseBackend.batches``) are held back until
    ``flush``: those of one scheduler pass with the same backend config become one batch
    (runner.execution.batch), which their backend submits in one go (a Slurm job array), at
    most ``max_parallel`` of them running at once.
    """

    def __init__(self, store: Store, max_parallel: int) -> None:
        self.store = store
        self.max_parallel = max_parallel
        self.held: dict[str, list[tuple[str, Plan]]] = {}
        self.folders: list[Path] = []
        self._batches: dict[str, bool] = {}

    def batches(self, backend: str) -> bool:
        """Whether runs on ``backend`` are batched (asked once per backend)."""
        if backend not in self._batches:
            from runner.backend import load_backend

            self._batches[backend] = bool(getattr(load_backend(backend), "batches", False))
        return self._batches[backend]

    def start(self, run_id: str, plan: Plan) -> subprocess.Popen[bytes] | None:
        """The run's supervisor now, or None when the run waits for ``flush``."""
        if not self.batches(plan.backend):
            return start_supervisor(run_id, self.store, plan)
        key = json.dumps([plan.backend, plan.backend_config], sort_keys=True, default=str)
        self.held.setdefault(key, []).append((run_id, plan))
        return None

    def flush(self) -> dict[str, subprocess.Popen[bytes]]:
        """The supervisors of the runs ``start`` held back, by run id."""
        from runner.execution.batch import Batch, create_batch, note_supervisor

        held, self.held = self.held, {}
        started = {}
        for members in held.values():
            folder = create_batch([run_id for run_id, _ in members], self.max_parallel)
            self.folders.append(folder)
            for index, (run_id, plan) in enumerate(members):
                batch = Batch(folder, index).variable()
                started[run_id] = start_supervisor(run_id, self.store, plan, batch)
                note_supervisor(folder, index, started[run_id].pid)
        return started

    def discard(self) -> list[str]:
        """The runs held back and never started (the workflow was cancelled)."""
        held, self.held = self.held, {}
        return [run_id for members in held.values() for run_id, _ in members]

    def close(self) -> None:
        from runner.execution.batch import remove_batch

        for folder in self.folders:
            remove_batch(folder)
        self.folders.clear()
