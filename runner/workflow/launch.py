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
