"""store-list-10k-runs: list N existing runs through each store's Python API."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from benchmarks import mlflow_env
from benchmarks.cases import _common as c
from benchmarks.cases.store_metrics import MLFLOW_CHILD, RUNNER_CHILD
from benchmarks.cases.store_metrics import available as store_available
from benchmarks.harness import Case, Context, Measurement

FULL_N, QUICK_N = 10_000, 500


def size(quick: bool) -> int:
    return QUICK_N if quick else FULL_N


def _child(python: str, child: Path, mode: str, n: int, db: Path) -> float:
    env = c.runner_env(db.parent / "home")
    seconds: float = c.child_json(python, child, [mode, str(n), str(db)], env, db.parent)["seconds"]
    return seconds


def _mlflow_python() -> str:
    return str(mlflow_env.venv_bin("python"))


def prepare_runner(ctx: Context) -> None:
    _child(sys.executable, RUNNER_CHILD, "create", size(ctx.quick), ctx.scratch / "runner.db")


def prepare_mlflow(ctx: Context) -> None:
    """Creating 10k MLflow runs takes minutes: keep the store per MLflow version and N."""
    n = size(ctx.quick)
    cached = c.WORK / "stores" / f"mlflow-{mlflow_env.mlflow_version()}-{n}-runs.db"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        _child(_mlflow_python(), MLFLOW_CHILD, "create", n, partial)
        partial.replace(cached)
    shutil.copyfile(cached, ctx.scratch / "mlflow.db")


def run_runner(ctx: Context) -> Measurement:
    n = size(ctx.quick)
    return Measurement(_child(sys.executable, RUNNER_CHILD, "list", n, ctx.scratch / "runner.db"))


def run_mlflow(ctx: Context) -> Measurement:
    n = size(ctx.quick)
    return Measurement(_child(_mlflow_python(), MLFLOW_CHILD, "list", n, ctx.scratch / "mlflow.db"))


CASES = [
    Case(
        name="store-list-10k-runs",
        description=(
            "list N runs of one experiment from a SQLite store (runs created untimed beforehand) "
            "in a fresh process: runner `Store.iter_runs` (pages of 500) vs MLflow `search_runs` "
            "paged by 1000; times the listing only (store opening untimed)"
        ),
        available=store_available,
        run_runner=run_runner,
        run_mlflow=run_mlflow,
        mlflow_available=c.mlflow_reason,
        prepare_runner=prepare_runner,
        prepare_mlflow=prepare_mlflow,
        quick=True,
        params=lambda quick: f"N={size(quick)}",
    )
]
