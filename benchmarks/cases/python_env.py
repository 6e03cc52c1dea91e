"""python-env-cold/-warm: a python_env project with three pinned packages, runner uv vs MLflow."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement, NotAvailable

PROJECT = c.PROJECTS / "python-env"
CACHE_NOTE = "env dir fresh each round; uv/pip package caches in benchmarks/.work warm"


def available() -> str | None:
    return c.cli_reason("run") or c.cli_reason("env")


def _runner_env(ctx: Context, home: Path) -> dict[str, str]:
    """RUNNER_HOME (env cache) per round or per case; one shared store for all rounds."""
    return c.runner_env(home, RUNNER_TRACKING_URI=f"sqlite:///{ctx.scratch / 'runner.db'}")


def _runner(ctx: Context, home: Path) -> Measurement:
    env = _runner_env(ctx, home)
    m = c.timed(c.runner_run(PROJECT, "--env-manager", "uv"), env, ctx.scratch)
    return Measurement(m.seconds)


def _mlflow(ctx: Context, manager: str, env_root: Path) -> Measurement:
    env = c.mlflow_run_env(ctx.scratch / "mlflow.db", env_root)
    m = c.timed(c.mlflow_run(PROJECT, "--env-manager", manager), env, ctx.scratch)
    return Measurement(m.seconds)


def runner_cold(ctx: Context) -> Measurement:
    home = c.fresh_dir(ctx.scratch, "runner-home-")
    try:
        return _runner(ctx, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def runner_warm(ctx: Context) -> Measurement:
    return _runner(ctx, ctx.scratch / "runner-home")


def mlflow_cold(manager: str) -> Callable[[Context], Measurement]:
    def run(ctx: Context) -> Measurement:
        root = c.fresh_dir(ctx.scratch, "mlflow-envs-")
        try:
            return _mlflow(ctx, manager, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    return run


def mlflow_warm(manager: str) -> Callable[[Context], Measurement]:
    def run(ctx: Context) -> Measurement:
        return _mlflow(ctx, manager, ctx.scratch / "mlflow-envs")

    return run


def mlflow_manager_reason(manager: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        if manager == "virtualenv" and c.which("pyenv") is None:
            return "not available: MLflow's virtualenv manager needs pyenv on PATH"
        return c.mlflow_reason()

    return probe


def prepare_runner(ctx: Context) -> None:
    """An untimed first run (fills the shared uv cache); it must really have built a uv env."""
    runner_warm(ctx)
    env = c.last_run(_runner_env(ctx, ctx.scratch / "runner-home")).get("environment") or {}
    if env.get("manager") != "uv" or not env.get("prefix"):
        raise NotAvailable(f"not available: `runner run --env-manager uv` recorded env {env}")


def prepare_mlflow_warm(manager: str) -> Callable[[Context], None]:
    def prepare(ctx: Context) -> None:
        mlflow_warm(manager)(ctx)

    return prepare


def _label(manager: str) -> Callable[[bool], str]:
    return lambda _quick: f"MLflow --env-manager {manager}"


def _case(temp: str, manager: str) -> Case:
    suffix = "" if manager == "virtualenv" else f"-{manager}"
    warm = temp == "warm"
    what = "second run, env cached" if warm else f"first run in a fresh env cache ({CACHE_NOTE})"
    return Case(
        name=f"python-env-{temp}{suffix}",
        description=(
            f"benchmarks/projects/python-env (six, idna, packaging pinned), {what}: "
            f"`runner run --env-manager uv` vs `mlflow run --env-manager {manager}`"
        ),
        available=available,
        run_runner=runner_warm if warm else runner_cold,
        run_mlflow=mlflow_warm(manager) if warm else mlflow_cold(manager),
        mlflow_available=mlflow_manager_reason(manager),
        prepare_runner=prepare_runner,
        prepare_mlflow=prepare_mlflow_warm(manager) if warm else None,
        params=_label(manager),
    )


CASES = [_case(t, m) for t in ("cold", "warm") for m in ("virtualenv", "uv")]
