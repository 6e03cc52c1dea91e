"""Start a submitted step run in its own runner process (the detached supervisor).

Why processes, not threads: the orchestrator's signal handling is process-wide (interrupts.py
keeps one deferral state and installs handlers in the main thread only), each run owns its
children as a subreaper, and ``runner runs cancel <step-run>`` signals the run's runner process,
which must then be the step's own and not the whole workflow. One supervisor per step gives
each step all of that unchanged, on any backend, and a step outlives a crash of the workflow
runner (resume then picks up its result).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from runner.execution.lifecycle import SECRETS_VARIABLE
from runner.home import run_artifacts_dir

if TYPE_CHECKING:
    from runner.execution.plan import Plan
    from runner.store import Store


def start_supervisor(run_id: str, store: Store, plan: Plan) -> subprocess.Popen[bytes]:
    """The step's runner process; it records the run's end itself (the caller reaps it)."""
    from runner.procinfo import process_start_time

    env = {**os.environ, SECRETS_VARIABLE: plan.secrets_json()} if plan.secrets else None
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
    """Starts submitted step runs: one local supervisor each, unless the step's backend takes
    many at once.

    The hook: a backend class may define ``start_runs(run_ids: list[str]) -> None``. It then
    gets every run of that backend the scheduler starts in one pass (a sweep's children up to
    --max-parallel) in one call, and must have each executed — e.g. one Slurm job array whose
    task i runs ``python -m runner.execution.supervisor <run_ids[i]>`` (each run's plan.json is
    in its artifacts, as for --detach). Those runs are followed through the store: a run has
    ended when its record says so; one whose runner died is settled by reconcile.
    """

    HOOK = "start_runs"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: dict[str, list[str]] = {}

    def start(self, run_id: str, plan: Plan) -> subprocess.Popen[bytes] | None:
        """A supervisor now, or None when the run waits for ``flush`` in its backend's batch."""
        if batched(plan.backend):
            self.batches.setdefault(plan.backend, []).append(run_id)
            return None
        return start_supervisor(run_id, self.store, plan)

    def flush(self) -> None:
        from runner.backend import load_backend

        batches, self.batches = self.batches, {}
        for backend, run_ids in batches.items():
            getattr(load_backend(backend), self.HOOK)(run_ids)


def batched(backend: str) -> bool:
    from runner.backend import load_backend

    return callable(getattr(load_backend(backend), Launcher.HOOK, None))
