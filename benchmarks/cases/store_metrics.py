"""store-log-100k-metrics: log N metrics into a fresh SQLite store through each Python API."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from benchmarks import mlflow_env
from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement

RUNNER_CHILD = c.BENCH_DIR / "cases" / "_store_runner_child.py"
MLFLOW_CHILD = c.BENCH_DIR / "cases" / "_store_mlflow_child.py"
FULL_N, QUICK_N = 100_000, 10_000


def size(quick: bool) -> int:
    return QUICK_N if quick else FULL_N


def available() -> str | None:
    if not c.has_module("runner.store.open"):
        return "not available: runner.store.open does not exist yet"
    return None


def _measure(ctx: Context, python: str, child: Path) -> Measurement:
    folder = c.fresh_dir(ctx.scratch, "store-")
    try:
        args = ["log", str(size(ctx.quick)), str(folder / "store.db")]
        env = c.runner_env(folder / "home")
        return Measurement(c.child_json(python, child, args, env, folder)["seconds"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_runner(ctx: Context) -> Measurement:
    return _measure(ctx, sys.executable, RUNNER_CHILD)


def run_mlflow(ctx: Context) -> Measurement:
    return _measure(ctx, str(mlflow_env.venv_bin("python")), MLFLOW_CHILD)


CASES = [
    Case(
        name="store-log-100k-metrics",
        description=(
            "log N metrics (10 keys x N/10 steps) to a fresh SQLite store in a fresh process: "
            "runner `Store.log_metrics` (one call) vs MLflow `MlflowClient.log_batch` (chunks of "
            "1000, its maximum); times the logging only (schema and run creation untimed)"
        ),
        available=available,
        run_runner=run_runner,
        run_mlflow=run_mlflow,
        mlflow_available=c.mlflow_reason,
        quick=True,
        params=lambda quick: f"N={size(quick)}",
    )
]
