"""workflow-200-steps: a 200-step chain of no-op steps, cold and fully cached (runner only).

Cold also reports ``overhead_per_step_ms``: (wall time - the step runs' own recorded durations)
/ steps, the scheduling cost the workflow adds to each step's run.
"""

from __future__ import annotations

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement
from benchmarks.workflow_steps import own_seconds, run_workflow, write_chain


def available() -> str | None:
    if not c.has_module("runner.workflow.engine"):
        return "not available: runner/workflow/ does not exist yet"
    return c.cli_reason("workflow", "run")


def _steps(ctx: Context) -> int:
    return 20 if ctx.quick else 200


def run_cold(ctx: Context) -> Measurement:
    folder = c.fresh_dir(ctx.scratch, "cold-")
    env = c.runner_env(folder / "home")
    steps = _steps(ctx)
    wall, summary = run_workflow(write_chain(folder, steps), env)
    runs = [s["run_id"] for s in summary["steps"].values()]  # type: ignore[attr-defined]
    overhead = (wall - own_seconds(runs, env)) / steps * 1000
    return Measurement(wall, {"overhead_per_step_ms": round(overhead, 2)})


def prepare_cached(ctx: Context) -> None:
    folder = c.fresh_dir(ctx.scratch, "cached-")
    ctx.state["env"] = c.runner_env(folder / "home")
    ctx.state["path"] = write_chain(folder, _steps(ctx))
    run_workflow(ctx.state["path"], ctx.state["env"])


def run_cached(ctx: Context) -> Measurement:
    wall, summary = run_workflow(ctx.state["path"], ctx.state["env"])
    statuses = {s["status"] for s in summary["steps"].values()}  # type: ignore[attr-defined]
    if statuses != {"cached"}:
        raise RuntimeError(f"a re-run was not fully cached: {statuses}")
    return Measurement(wall, {"in_workflow_s": float(summary["seconds"])})  # type: ignore[arg-type]


CASES = [
    Case(
        name="workflow-200-steps-cold",
        description="a 200-step chain of no-op steps, cold (runner only; overhead per step)",
        available=available,
        run_runner=run_cold,
        params=lambda quick: f"steps={20 if quick else 200}",
    ),
    Case(
        name="workflow-200-steps-cached",
        description="the same workflow again, every step reused from the store (runner only)",
        available=available,
        run_runner=run_cached,
        prepare_runner=prepare_cached,
        params=lambda quick: f"steps={20 if quick else 200}",
    ),
]
