"""Front doors to one run — CLI, Python API, detached supervisor — over the same orchestrator."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.backend import ExitInfo
from runner.console import discard_sink, say, terminal_sink
from runner.errors import RunnerError
from runner.execution.interrupts import Cancelled, cancellable, deferred
from runner.execution.orchestrator import execute, submit
from runner.execution.plan import (
    Plan,
    RunRequest,
    make_plan,
    parse_backend_config,
    parse_docker_args,
)
from runner.home import run_artifacts_dir
from runner.procinfo import become_subreaper
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.store import Store

SECRETS_VARIABLE = "RUNNER_SUPERVISOR_SECRETS"


def run_from_cli(
    *,
    uri: str,
    entry_point: str,
    params: Sequence[str],
    version: str | None,
    env_manager: str | None,
    backend: str | None,
    backend_config: str | None,
    docker_args: Sequence[str],
    experiment: str,
    run_name: str | None,
    detach: bool,
    submodules: bool,
    quiet: bool,
    mlflow_api: bool = False,
    dry_run: bool = False,
    python_match: str = "exact",
) -> int:
    """`runner run`: returns the process exit code."""
    from runner.project.params import parse_param_args

    config = parse_backend_config(backend_config)
    if docker_args:
        config["docker_args"] = parse_docker_args(docker_args)
    request = RunRequest(
        uri=uri,
        entry_point=entry_point,
        parameters=parse_param_args(params),
        version=version,
        env_manager=env_manager,
        backend=backend,
        backend_config=config,
        experiment=experiment,
        run_name=run_name,
        parent_run_id=os.environ.get("RUNNER_RUN_ID"),
        submodules=submodules,
        mlflow_api=mlflow_api,
        python_match=python_match,
    )
    plan = make_plan(request)
    for warning in plan.warnings:
        say(f"warning: {warning}")
    if dry_run:
        return _print_dry_run(plan)
    store = open_reconciled_store()
    if detach:
        return _run_detached(plan, store, quiet)
    return _run_attached(plan, store, quiet)


def _print_dry_run(plan: Plan) -> int:
    import shutil

    from runner.execution.dryrun import render_plan

    try:
        print(render_plan(plan), end="")
    finally:
        for path in plan.cleanup_paths:  # a temp checkout of a git or zip source
            shutil.rmtree(path, ignore_errors=True)
    return 0


def _run_detached(plan: Plan, store: Store, quiet: bool) -> int:
    """Return once the backend has the run (or it ended before that), not when it is recorded:
    a broken environment is reported here, not found later in a log."""
    from runner.execution.detach import wait_until_launched
    from runner.progressview import progress_view

    run_id = submit(plan, store)
    supervisor = spawn_supervisor(run_id, store, plan)
    view = progress_view(quiet)
    try:
        wait_until_launched(run_id, supervisor, store, view)
    except KeyboardInterrupt:
        view.close()
        print(run_id)
        say(f"the run continues detached: runner runs cancel {run_id} stops it")
        return 130
    except RunnerError:
        view.close()  # the error that follows says how the run ended
        raise
    view.close()
    print(run_id)
    follow = f"runner runs logs {run_id} --follow"
    say(f"run {run_id} launched ({plan.backend}); follow it: {follow}", quiet=quiet)
    return 0


def _run_attached(plan: Plan, store: Store, quiet: bool) -> int:
    from runner.progressview import progress_view

    become_subreaper()  # this process owns its children: orphans of the run are ended with it
    started = time.monotonic()
    run_id = ""
    view = progress_view(quiet)
    try:
        with cancellable():
            with deferred():  # a signal from here on still ends the recorded run KILLED
                run_id = submit(plan, store)
            info = execute(run_id, plan, store, terminal_sink, view)
    except KeyboardInterrupt:
        view.close()
        say(f"run {run_id} KILLED (interrupted)")
        return 130
    except Cancelled:
        view.close()
        say(f"run {run_id} KILLED (terminated)")
        return 1
    except RunnerError:
        view.close()  # the error follows; this line names the run it ended
        when = "" if view.entry_point_started else " before its entry point started"
        say(f"run {run_id} FAILED{when}")
        raise
    view.close()
    _report(run_id, info, time.monotonic() - started, quiet)
    return 0 if info.status is RunStatus.FINISHED else 1


def _report(run_id: str, info: ExitInfo, seconds: float, quiet: bool) -> None:
    detail = f" ({info.reason})" if info.reason else ""
    say(
        f"run {run_id} {info.status.value} in {seconds:.2f}s{detail}",
        quiet=quiet and info.status is RunStatus.FINISHED,
    )


def open_reconciled_store() -> Store:
    """Open the store and end any run whose runner died, before doing anything else."""
    from runner.execution.reconcile import reconcile
    from runner.store.open import open_store

    store = open_store()
    reconcile(store)
    return store


def spawn_supervisor(run_id: str, store: Store, plan: Plan) -> subprocess.Popen[bytes]:
    """Start a detached process that executes the recorded plan; it becomes the run's runner.

    Secret parameter values never touch plan.json: they reach the supervisor through its
    environment, which only its user can read, and it drops them before the entry point starts.
    """
    from runner.execution.detach import SUPERVISOR_LOG
    from runner.procinfo import process_start_time

    env = {**os.environ, SECRETS_VARIABLE: plan.secrets_json()} if plan.secrets else None
    with open(run_artifacts_dir(run_id) / SUPERVISOR_LOG, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.execution.supervisor", run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )
    store.update_run(run_id, runner_pid=proc.pid, runner_start=process_start_time(proc.pid))
    return proc


def supervise(run_id: str) -> int:
    """The detached side: execute a submitted run whose plan is in its artifacts."""
    from runner.execution.batch import BATCH_VARIABLE, Batch
    from runner.progressview import ProgressView
    from runner.store.open import open_store

    plan = Plan.from_json((run_artifacts_dir(run_id) / "plan.json").read_text())
    secrets = os.environ.pop(SECRETS_VARIABLE, None)  # the entry point must not inherit it
    if secrets is not None:
        plan = plan.with_secrets(secrets)
    batch = os.environ.pop(BATCH_VARIABLE, None)  # nor must any run it starts join the batch
    if batch:
        plan = dataclasses.replace(plan, batch=batch)
    become_subreaper()  # this process owns its children: orphans of the run are ended with it
    store = open_store()
    # progress goes to supervisor.log (its stdout), where the detaching side reads it
    progress = ProgressView(sys.stdout, live=False)
    try:
        with cancellable():
            info = execute(run_id, plan, store, discard_sink, progress)
    except (KeyboardInterrupt, Cancelled):
        return 1
    except RunnerError as exc:  # recorded as the run's failure reason; the log gets the hint too
        print(exc.render(), file=sys.stderr)
        return 1
    finally:
        if batch:  # ended before its backend took it (an environment that failed to build)
            Batch.parse(batch).withdraw()
    return 0 if info.status is RunStatus.FINISHED else 1


def run_in_process(request: RunRequest, *, synchronous: bool) -> tuple[str, Any]:
    """The Python API: validate and record; then execute here or in a detached supervisor."""
    plan = make_plan(request)
    store = open_reconciled_store()
    run_id = submit(plan, store)
    if not synchronous:  # as --detach: back once launched; a run that ended before raises
        from runner.execution.detach import wait_until_launched

        supervisor = spawn_supervisor(run_id, store, plan)
        wait_until_launched(run_id, supervisor, store, lambda message: None)
        return run_id, supervisor.pid
    with cancellable():
        info = execute(run_id, plan, store, terminal_sink, lambda message: None)
    return run_id, info


def request_from_api(
    uri: str, entry_point: str, parameters: Mapping[str, Any] | None, **options: Any
) -> RunRequest:
    """Python callers may pass numbers; they are recorded as their string form."""
    params = {str(k): _api_value(v) for k, v in (parameters or {}).items()}
    return RunRequest(uri=uri, entry_point=entry_point, parameters=params, **options)


def _api_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
