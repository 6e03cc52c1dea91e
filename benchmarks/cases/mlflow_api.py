"""mlflow-api-startup: the trivial run of cli-overhead with the embedded MLflow API served."""

from __future__ import annotations

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement

PROJECT = c.PROJECTS / "trivial"


def available() -> str | None:
    return c.cli_reason("run")


def run_runner(ctx: Context) -> Measurement:
    env = c.runner_env(ctx.scratch / "runner-home")
    return c.timed(c.runner_run(PROJECT, "--env-manager", "local", "--mlflow-api"), env, ctx.scratch)


CASES = [
    Case(
        name="mlflow-api-startup",
        description=(
            "`runner run benchmarks/projects/trivial --env-manager local --mlflow-api`: the run "
            "of cli-overhead with the MLflow API served on a loopback port for its duration "
            "(what a project whose env has mlflow gets); compare with cli-overhead's runner side"
        ),
        available=available,
        run_runner=run_runner,
        quick=True,
    )
]
