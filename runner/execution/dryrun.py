"""`runner run --dry-run`: what the backend would submit, checked, with nothing recorded or run."""

from __future__ import annotations

from runner.backend import LaunchRequest, load_backend
from runner.errors import UsageError
from runner.execution.plan import Plan

DRY_RUN_ID = "dry-run"


def render_plan(plan: Plan) -> str:
    """The backend's rendering of the plan (for Kubernetes: the Job manifests as YAML).

    No run is recorded, no environment built; the command shown has secret values masked."""
    backend = load_backend(plan.backend)
    render = getattr(backend, "render", None)
    if render is None:
        raise UsageError(
            f"backend {plan.backend!r} has nothing to show for --dry-run",
            hint="--dry-run prints the manifests of backends that submit them (kubernetes)",
        )
    if plan.spec is None:  # make_plan always keeps it in-process
        raise UsageError("--dry-run needs the project's parsed MLproject")
    request = LaunchRequest(
        run_id=DRY_RUN_ID,
        command=plan.recorded_command,
        work_dir=plan.project_dir,
        env={"RUNNER_RUN_ID": DRY_RUN_ID, "RUNNER_EXPERIMENT": plan.experiment},
        spec=plan.spec,
        config=plan.backend_config,
        run_name=plan.run_name or "",
        input_paths=plan.input_paths,
        input_sources=plan.input_sources,
    )
    text: str = render(request)
    return text
