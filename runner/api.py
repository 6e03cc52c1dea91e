"""The Python API: ``runner.run(...) -> Run`` with ``wait``, ``status`` and ``cancel``."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from runner.execution.plan import DEFAULT_EXPERIMENT
from runner.status import RunStatus


class Run:
    """A submitted run, read back from the tracking store (works across processes)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"Run({self.run_id!r}, status={self.status().value})"

    def record(self) -> dict[str, Any]:
        """The full run record, as ``runner runs show --json`` prints it."""
        from runner.execution.control import current_record
        from runner.execution.lifecycle import open_reconciled_store

        store = open_reconciled_store()
        try:
            return current_record(store, self.run_id).to_dict()
        finally:
            store.close()

    def status(self) -> RunStatus:
        return RunStatus(self.record()["status"])

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (or ``timeout`` passes); True if it FINISHED."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while not (status := self.status()).is_terminal:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return status is RunStatus.FINISHED

    def cancel(self) -> None:
        """Stop the run (through its runner process, or its backend if the runner is gone);
        the run ends KILLED. No-op once ended."""
        from runner.execution.control import cancel_run
        from runner.execution.lifecycle import open_reconciled_store

        store = open_reconciled_store()
        try:
            cancel_run(store, self.run_id)
        finally:
            store.close()


def run(
    uri: str,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    version: str | None = None,
    env_manager: str | None = None,
    backend: str | None = None,
    backend_config: Mapping[str, Any] | None = None,
    experiment_name: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    synchronous: bool = True,
    recurse_submodules: bool = False,
    mlflow_api: bool = False,
) -> Run:
    """Run an entry point of a project and return its :class:`Run`.

    Everything is validated (source, spec, parameters, backend) before a run is recorded;
    errors raise ``runner.errors.RunnerError`` subclasses. With ``synchronous=True`` the call
    returns when the run has ended (output streams to this process's stdout/stderr); a failed
    run does not raise — check ``run.status()``. With ``synchronous=False`` the run executes
    in a detached process and the call returns at once. ``env_manager=None`` picks the
    project's own (python_env → uv, conda → conda, none → local). ``recurse_submodules``
    fetches a git source's submodules (never done by default). ``mlflow_api`` serves MLflow's
    tracking API to the entry point even when its environment has no mlflow package.
    """
    from runner.execution.lifecycle import request_from_api, run_in_process

    request = request_from_api(
        uri,
        entry_point,
        parameters,
        version=version,
        env_manager=env_manager,
        backend=backend,
        backend_config=dict(backend_config or {}),
        experiment=experiment_name,
        run_name=run_name,
        parent_run_id=os.environ.get("RUNNER_RUN_ID"),
        submodules=recurse_submodules,
        mlflow_api=mlflow_api,
    )
    run_id, _ = run_in_process(request, synchronous=synchronous)
    return Run(run_id)


def workflow(
    path: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    max_parallel: int | None = None,
    backend: str | None = None,
    env_manager: str | None = None,
    use_cache: bool = True,
    on_failure: str | None = None,
    experiment_name: str = DEFAULT_EXPERIMENT,
) -> Run:
    """Run the workflow file at ``path`` to its end and return the workflow :class:`Run`.

    Its steps are child runs of it (``runner runs list``); inside an entry point the workflow
    run itself is a child of that entry point's run. Errors in the file raise
    ``runner.errors.SpecError`` before anything runs; failed steps do not raise — check
    ``status()``."""
    from pathlib import Path

    from runner.workflow.engine import Settings, run_workflow
    from runner.workflow.progress import PlainReporter
    from runner.workflow.spec import load_workflow

    spec = load_workflow(Path(path))
    settings = Settings(
        parameters={str(k): _text(v) for k, v in (parameters or {}).items()},
        max_parallel=max_parallel,
        on_failure=on_failure,
        use_cache=use_cache,
        backend=backend,
        env_manager=env_manager,
        experiment=experiment_name,
        file=str(path),
    )
    return Run(run_workflow(spec, settings, PlainReporter()).run_id)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = ["Run", "RunStatus", "run", "workflow"]
