"""A workflow run: its record and artifacts, the scheduler over its steps, resume and status."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import ParameterError, RunnerError, UsageError
from runner.execution.interrupts import Cancelled, cancellable, deferred, raise_pending
from runner.home import run_artifacts_dir
from runner.status import RunStatus
from runner.workflow.progress import Reporter
from runner.workflow.scheduler import Options, Scheduler
from runner.workflow.spec import StepSpec, WorkflowSpec
from runner.workflow.state import SUCCEEDED, StepState
from runner.workflow.steps import STEP_TAG, Defaults, Planner

if TYPE_CHECKING:
    from runner.store import RunRecord, Store

KIND_TAG = "runner.kind"  # workflow or sweep, on the parent run
RESUMED_FROM_TAG = "runner.resumed_from"
WORKFLOW_FILE = "workflow.yaml"
DAG_FILE = "dag.json"


@dataclass(frozen=True)
class Settings:
    """Everything a workflow run was started with; kept in dag.json so resume repeats it."""

    parameters: dict[str, str] = field(default_factory=dict)
    max_parallel: int | None = None
    on_failure: str | None = None
    use_cache: bool = True
    refresh: tuple[str, ...] = ()
    backend: str | None = None
    backend_config: dict[str, Any] = field(default_factory=dict)
    env_manager: str | None = None
    experiment: str = "Default"
    kind: str = "workflow"
    file: str = ""  # the workflow file as given on the command line
    # a sweep's summary (metric, maximize): a resumed sweep ends with the same table and best run
    sweep: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    run_id: str
    status: RunStatus
    steps: dict[str, StepState]
    reason: str | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "steps": {name: step.summary() for name, step in self.steps.items()},
        }


def workflow_parameters(spec: WorkflowSpec, given: Mapping[str, str]) -> dict[str, str]:
    """The workflow's parameters: declared types checked, defaults filled, unknown refused."""
    from runner.project.params import type_error

    declared = {p.name: p for p in spec.parameters}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ParameterError(
            f"unknown workflow parameter(s): {', '.join(unknown)} (declared: {known})"
        )
    values = {name: given.get(name, p.default) for name, p in declared.items()}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ParameterError(f"no value given for workflow parameter(s): {', '.join(missing)}")
    problems = [e for n, v in values.items() if v and (e := type_error(n, declared[n].type, v))]
    if problems:
        raise ParameterError("\n".join(problems))
    return {name: value for name, value in values.items() if value is not None}


def run_workflow(
    spec: WorkflowSpec,
    settings: Settings,
    reporter: Reporter,
    *,
    reuse: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Outcome:
    """Record the workflow run, run its steps to the end, record how it ended.

    ^C and SIGTERM (``runner runs cancel``) cancel the running steps and are raised again
    once every step run has been recorded KILLED."""
    from runner.execution.lifecycle import open_reconciled_store
    from runner.workflow.cachekey import KeyParts

    params = workflow_parameters(spec, settings.parameters)
    settings = _with(settings, parameters=params)
    store = open_reconciled_store()  # each step's supervisor is the subreaper of its run
    started = time.monotonic()
    options = Options(
        max_parallel=settings.max_parallel or spec.max_parallel or 1,
        on_failure=settings.on_failure or spec.on_failure,
        use_cache=settings.use_cache,
        refresh=frozenset(settings.refresh),
        parameters=params,
        reuse=dict(reuse or {}),
    )
    planner = Planner(spec.root, _defaults(settings), spec.name)
    try:
        planner.check_all(spec.steps, params)  # refuses before the workflow run exists
        with cancellable():
            with deferred():  # a ^C now still ends the recorded workflow run KILLED
                run_id = _create_run(store, spec, settings, dict(tags or {}))
            planner.parent_run_id = run_id
            scheduler = Scheduler(spec, store, planner, KeyParts(), reporter, options)
            status, reason = _run_steps(store, run_id, scheduler)
    finally:
        planner.close()
        store.close()
    return Outcome(run_id, status, scheduler.steps, reason, time.monotonic() - started)


def _run_steps(store: Store, run_id: str, scheduler: Scheduler) -> tuple[RunStatus, str | None]:
    try:
        raise_pending()
        store.start_run(run_id)
        steps = scheduler.run()
    except (KeyboardInterrupt, Cancelled) as exc:
        why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "cancelled"
        _finish(store, run_id, scheduler.steps, RunStatus.KILLED, why)
        raise
    except BaseException as exc:
        error = exc.message if isinstance(exc, RunnerError) else f"internal error: {exc!r}"
        _finish(store, run_id, scheduler.steps, RunStatus.FAILED, error)
        raise
    status, reason = _verdict(steps)
    _finish(store, run_id, steps, status, reason)
    return status, reason


def _with(settings: Settings, **changes: Any) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)


def _defaults(settings: Settings) -> Defaults:
    return Defaults(
        backend=settings.backend,
        backend_config=settings.backend_config,
        env_manager=settings.env_manager,
        experiment=settings.experiment,
    )


def _create_run(store: Store, spec: WorkflowSpec, settings: Settings, tags: dict[str, str]) -> str:
    from runner.procinfo import process_start_time
    from runner.store import NewRun

    run_id = store.create_run(
        NewRun(
            experiment=settings.experiment,
            entry_point=settings.kind,
            command=_command(spec, settings),
            backend="local",  # where the workflow runner itself runs
            parameters=settings.parameters,
            source={"uri": str(spec.root)},
            environment={"manager": "none"},
            run_name=spec.name,
            tags={KIND_TAG: settings.kind, **tags},
            parent_run_id=os.environ.get("RUNNER_RUN_ID"),  # a workflow inside an entry point
            runner_pid=os.getpid(),
            runner_host=socket.gethostname(),
            runner_start=process_start_time(os.getpid()),
        )
    )
    artifacts = run_artifacts_dir(run_id)
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / WORKFLOW_FILE).write_text(spec.text or _generated_text(spec))
    (artifacts / DAG_FILE).write_text(json.dumps(_dag(spec, settings), indent=2, sort_keys=True))
    return run_id


def _command(spec: WorkflowSpec, settings: Settings) -> str:
    import shlex

    words = ["runner", "workflow", "run", settings.file or spec.name]
    for name, value in settings.parameters.items():
        words += ["-P", f"{name}={value}"]
    return shlex.join(words) if settings.kind == "workflow" else f"runner {settings.kind}"


def _dag(spec: WorkflowSpec, settings: Settings) -> dict[str, Any]:
    """The resolved DAG: steps in order with their needs, and how the run was started."""
    from runner.workflow.dag import topological

    order = topological(spec.needs())
    return {
        "name": spec.name,
        "root": str(spec.root),
        "order": order,
        "steps": {name: asdict(spec.steps[name]) for name in order},
        "settings": asdict(settings),
        "on_failure": spec.on_failure,
        "max_parallel": spec.max_parallel,
    }


def _generated_text(spec: WorkflowSpec) -> str:
    """A sweep has no file: its generated steps are kept as JSON (valid YAML)."""
    steps = {name: _step_body(step) for name, step in spec.steps.items()}
    return json.dumps({"name": spec.name, "steps": steps}, indent=2) + "\n"


def _step_body(step: Any) -> dict[str, Any]:
    body = {k: v for k, v in asdict(step).items() if k != "name" and v not in (None, (), {}, [])}
    body["needs"] = list(step.needs)
    return body


def _verdict(steps: Mapping[str, StepState]) -> tuple[RunStatus, str | None]:
    bad = [name for name, step in steps.items() if step.status not in SUCCEEDED]
    if not bad:
        return RunStatus.FINISHED, None
    failed = [name for name in bad if steps[name].status == "failed"]
    return RunStatus.FAILED, f"step(s) failed: {', '.join(failed or bad)}"


def _finish(
    store: Store,
    run_id: str,
    steps: Mapping[str, StepState],
    status: RunStatus,
    reason: str | None,
) -> None:
    summary = {name: step.summary() for name, step in steps.items()}
    path = run_artifacts_dir(run_id) / "steps.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    _send_to_server(store, run_id)
    with deferred():
        store.finish_run(run_id, status, 0 if status is RunStatus.FINISHED else 1, reason)


def _send_to_server(store: Store, run_id: str) -> None:
    """With a tracking server for a store, the workflow run's file, DAG and step results go
    there too (its web UI draws the graph from them); best effort, as for any run."""
    from runner.store.rest import RestStore

    if isinstance(store, RestStore):
        from runner.console import say
        from runner.execution.upload import upload_run_outputs

        upload_run_outputs(store, run_id, run_artifacts_dir(run_id), False, say)


# -- resume and status ---------------------------------------------------------------------


def recorded_dag(run_id: str, store: Store) -> tuple[RunRecord, dict[str, Any]]:
    """A workflow or sweep run and its dag.json (steps in order, how it was started)."""
    record = store.get_run(run_id)
    path = run_artifacts_dir(record.run_id) / DAG_FILE
    if record.tags.get(KIND_TAG) not in ("workflow", "sweep") or not path.is_file():
        raise UsageError(
            f"run {record.run_id} is not a workflow run",
            hint="`runner runs list` shows workflow runs with entry point workflow or sweep",
        )
    dag: dict[str, Any] = json.loads(path.read_text())
    return record, dag


def load_recorded(run_id: str, store: Store) -> tuple[RunRecord, WorkflowSpec, Settings]:
    """The workflow file and settings a workflow run was started with, from its artifacts."""
    from runner.workflow.spec import parse_workflow

    record, dag = recorded_dag(run_id, store)
    text = (run_artifacts_dir(record.run_id) / WORKFLOW_FILE).read_bytes()
    if record.tags.get(KIND_TAG) == "sweep":
        spec = _generated_spec(text, Path(dag["root"]))
    else:
        spec = parse_workflow(text, WORKFLOW_FILE, Path(dag["root"]))
    settings = Settings(**{**dag["settings"], "refresh": tuple(dag["settings"]["refresh"])})
    return record, spec, settings


def _generated_spec(text: bytes, root: Path) -> WorkflowSpec:
    """A sweep's steps back from what ``_generated_text`` kept (runner wrote it: no schema)."""
    data = json.loads(text)
    steps = {
        name: StepSpec(name=name, **{**body, "needs": tuple(body["needs"])})
        for name, body in data["steps"].items()
    }
    return WorkflowSpec(name=data["name"], root=root, steps=steps, on_failure="continue")


def finished_steps(store: Store, run_id: str, wait_seconds: float = 3600.0) -> dict[str, str]:
    """Each step's FINISHED run under ``run_id``; steps still running (their supervisors
    outlive a killed workflow runner) are waited for first."""
    deadline = time.monotonic() + wait_seconds
    children = store.child_runs(run_id)
    while any(not c.status.is_terminal for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
        children = store.child_runs(run_id)
    found: dict[str, str] = {}
    for child in children:  # oldest first: a later attempt's result wins
        step = child.tags.get(STEP_TAG)
        if step and child.status is RunStatus.FINISHED:
            found[step] = child.tags.get("runner.cached_from", child.run_id)
    return found


def step_table(store: Store, run_id: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest run of each step of a workflow run, for `runner workflow status`."""
    rows: dict[str, dict[str, Any]] = {name: {"status": "pending"} for name in names}
    for child in store.child_runs(run_id):
        step = child.tags.get(STEP_TAG)
        if step is None:
            continue
        cached = child.tags.get("runner.cached_from")
        rows[step] = {
            "status": "cached" if cached else child.status.value.lower(),
            "run_id": child.run_id,
            "cached_from": cached,
            "attempt": int(child.tags.get("runner.attempt", "1")),
            "reason": child.failure_reason,
            "start_time": child.start_time,
            "end_time": child.end_time,
        }
    return rows
