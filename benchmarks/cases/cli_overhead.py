"""cli-overhead: a trivial entry point in the system environment, run recorded in a fresh store."""

from __future__ import annotations

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement

PROJECT = c.PROJECTS / "trivial"


def available() -> str | None:
    return c.cli_reason("run")


def run_runner(ctx: Context) -> Measurement:
    env = c.runner_env(ctx.scratch / "runner-home")
    return c.timed(c.runner_run(PROJECT, "--env-manager", "local"), env, ctx.scratch)


def run_mlflow(ctx: Context) -> Measurement:
    env = c.mlflow_run_env(ctx.scratch / "mlflow.db", ctx.scratch / "mlflow-envs")
    m = c.timed(c.mlflow_run(PROJECT, "--env-manager", "local"), env, ctx.scratch)
    return Measurement(m.seconds)  # MLflow's RSS is not what the issue asks for


CASES = [
    Case(
        name="cli-overhead",
        description=(
            "`runner run benchmarks/projects/trivial --env-manager local` vs the same with "
            "`mlflow run` (SQLite store; the warm-up creates the schema); wall time of the "
            "whole process, peak RSS of the runner process"
        ),
        available=available,
        run_runner=run_runner,
        run_mlflow=run_mlflow,
        mlflow_available=c.mlflow_reason,
        quick=True,
    )
]
