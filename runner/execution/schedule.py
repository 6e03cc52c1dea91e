"""Recurring runs: plan a run once (commit pinned, image pushed), then hand it to the backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runner.backend import LaunchRequest, load_backend
from runner.errors import UsageError
from runner.execution.plan import Plan, RunRequest, make_plan

Progress = Callable[[str], None]


def _scheduler(name: str) -> Any:
    backend = load_backend(name)
    if not hasattr(backend, "create_schedule"):
        raise UsageError(
            f"backend {name!r} cannot run schedules",
            hint="schedules run on a cluster's own scheduler: use -b kubernetes",
        )
    return backend


def create_schedule(name: str, cron: str, request: RunRequest, progress: Progress) -> str:
    """Validate the run as `runner run` would, build and push its image, create the schedule.
    Returns what was created (the backend's description)."""
    backend = _scheduler(request.backend or "local")
    plan = make_plan(request)
    try:
        if plan.secrets:
            raise UsageError(
                "a schedule cannot take secret parameters: each firing would read them from "
                "the cluster's copy of the schedule",
                hint="pass secrets to the pods through the cluster (a Secret in the job template)",
            )
        description: str = backend.create_schedule(
            name, cron, _request(plan, progress), _run_record(plan)
        )
    finally:
        import shutil

        for path in plan.cleanup_paths:  # the image holds the pinned code now
            shutil.rmtree(path, ignore_errors=True)
    return description


def _request(plan: Plan, progress: Progress) -> LaunchRequest:
    from runner.envs.prepare import prepare_env
    from runner.project.spec import load_spec

    spec = plan.spec or load_spec(plan.project_dir)
    environment = prepare_env(spec, plan.env_manager, progress=progress, build=False)
    return LaunchRequest(
        run_id="schedule",
        command=plan.command,
        work_dir=plan.project_dir,
        env={"RUNNER_EXPERIMENT": plan.experiment},
        spec=spec,
        environment=environment,
        config=plan.backend_config,
        input_paths=plan.input_paths,
        input_sources=plan.input_sources,
    )


def _run_record(plan: Plan) -> Mapping[str, Any]:
    """What each firing records (the server's POST /api/runs body)."""
    return {
        "experiment": plan.experiment,
        "entry_point": plan.entry_point,
        "command": plan.recorded_command,
        "backend": plan.backend,
        "parameters": plan.parameters,
        "source": plan.source,
        "environment": {"manager": plan.env_manager},
    }


def list_schedules(backend: str, config: Mapping[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = _scheduler(backend).list_schedules(config)
    return rows


def delete_schedule(backend: str, config: Mapping[str, Any], name: str) -> None:
    _scheduler(backend).delete_schedule(config, name)
