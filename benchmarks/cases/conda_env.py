"""conda-env-cold/-warm: a conda_env project with `runner run --env-manager conda` (runner only)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement

PROJECT = c.PROJECTS / "conda-env"


def available() -> str | None:
    # conda envs are planned on py-rattler (no conda executable needed): probe runner itself
    if importlib.util.find_spec("runner.envs.conda") is None:
        return "not available: runner has no conda environment manager yet"
    return c.cli_reason("run")


def _run(home: Path) -> Measurement:
    argv = c.runner_run(PROJECT, "--env-manager", "conda")
    return Measurement(c.timed(argv, c.runner_env(home), home.parent).seconds)


def run_cold(ctx: Context) -> Measurement:
    home = c.fresh_dir(ctx.scratch, "runner-home-")
    try:
        return _run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_warm(ctx: Context) -> Measurement:
    return _run(ctx.scratch / "runner-home")


def prepare_warm(ctx: Context) -> None:
    run_warm(ctx)


CASES = [
    Case(
        name="conda-env-cold",
        description="benchmarks/projects/conda-env, fresh RUNNER_HOME: first conda env build "
        "(runner only: MLflow needs a conda install too)",
        available=available,
        run_runner=run_cold,
    ),
    Case(
        name="conda-env-warm",
        description="benchmarks/projects/conda-env, second run with the env cached (runner only)",
        available=available,
        run_runner=run_warm,
        prepare_runner=prepare_warm,
    ),
]
