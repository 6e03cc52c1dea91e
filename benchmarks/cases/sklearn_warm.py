"""sklearn-*: a scikit-learn training script warm, runner vs MLflow vs the script run directly.

Each case has its own scratch dir, so its envs are built (untimed) under the case's own
PYTHONDONTWRITEBYTECODE setting: with it set, as in many containers, an env whose installer did
not compile bytecode recompiles every imported module on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement, NotAvailable, Probe

Side = Callable[[Context], Measurement]
Preparer = Callable[[Context], None]

PROJECT = c.PROJECTS / "sklearn"
NO_PYC = {"PYTHONDONTWRITEBYTECODE": "1"}


def _bytecode(env: dict[str, str], no_pyc: bool) -> dict[str, str]:
    """``env`` with PYTHONDONTWRITEBYTECODE=1, or without it (machines may set it globally)."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **NO_PYC} if no_pyc else env


def _runner_env(ctx: Context, no_pyc: bool) -> dict[str, str]:
    db = f"sqlite:///{ctx.scratch / 'runner.db'}"
    return _bytecode(c.runner_env(ctx.scratch / "runner-home", RUNNER_TRACKING_URI=db), no_pyc)


def _mlflow_env(ctx: Context, manager: str, no_pyc: bool) -> dict[str, str]:
    roots = ctx.scratch / f"mlflow-envs-{manager}"
    return _bytecode(c.mlflow_run_env(ctx.scratch / "mlflow.db", roots), no_pyc)


def runner_run(no_pyc: bool) -> Side:
    def run(ctx: Context) -> Measurement:
        argv = c.runner_run(PROJECT, "--env-manager", "uv")
        return Measurement(c.timed(argv, _runner_env(ctx, no_pyc), ctx.scratch).seconds)

    return run


def mlflow_run(manager: str, no_pyc: bool) -> Side:
    def run(ctx: Context) -> Measurement:
        argv = c.mlflow_run(PROJECT, "--env-manager", manager)
        return Measurement(c.timed(argv, _mlflow_env(ctx, manager, no_pyc), ctx.scratch).seconds)

    return run


def _script(python: Path, env: dict[str, str], ctx: Context) -> Measurement:
    """``python train.py`` in the project dir, as the entry point would be run, no tool around."""
    argv = [str(python), "train.py", "0.5", "0.1"]
    return Measurement(c.timed(argv, env, PROJECT).seconds)


def direct_in_runner_env(no_pyc: bool) -> Side:
    def run(ctx: Context) -> Measurement:
        python = ctx.state["runner_python"]
        return _script(python, _bytecode(c.runner_env(ctx.scratch), no_pyc), ctx)

    return run


def direct_in_mlflow_env(manager: str, no_pyc: bool) -> Side:
    def run(ctx: Context) -> Measurement:
        python = ctx.state[f"mlflow_python_{manager}"]
        return _script(python, _mlflow_env(ctx, manager, no_pyc), ctx)

    return run


def prepare_runner(no_pyc: bool) -> Preparer:
    """One untimed run builds the env; its interpreter is kept for the direct runs."""

    def prepare(ctx: Context) -> None:
        runner_run(no_pyc)(ctx)
        env = c.last_run(_runner_env(ctx, no_pyc)).get("environment") or {}
        if env.get("manager") != "uv" or not env.get("prefix"):
            raise NotAvailable(f"not available: the runner run recorded env {env}")
        ctx.state["runner_python"] = Path(env["prefix"]) / "bin" / "python"

    return prepare


def prepare_mlflow(manager: str, no_pyc: bool) -> Preparer:
    def prepare(ctx: Context) -> None:
        mlflow_run(manager, no_pyc)(ctx)
        roots = ctx.scratch / f"mlflow-envs-{manager}"
        found = sorted(roots.glob("*/bin/python"))
        if len(found) != 1:
            raise NotAvailable(f"not available: expected one MLflow env in {roots}, found {found}")
        ctx.state[f"mlflow_python_{manager}"] = found[0]

    return prepare


def mlflow_reason(manager: str) -> Probe:
    def probe() -> str | None:
        if manager == "virtualenv" and c.which("pyenv") is None:
            return "not available: MLflow's virtualenv manager needs pyenv on PATH"
        return c.mlflow_reason()

    return probe


def _tag(no_pyc: bool) -> str:
    return "PYTHONDONTWRITEBYTECODE=1" if no_pyc else "PYTHONDONTWRITEBYTECODE unset"


def _run_case(manager: str, no_pyc: bool) -> Case:
    suffix = ("" if manager == "uv" else f"-{manager}") + ("-nopyc" if no_pyc else "")
    return Case(
        name=f"sklearn-warm{suffix}",
        description=(
            "benchmarks/projects/sklearn (scikit-learn, pandas), env cached, "
            f"{_tag(no_pyc)}: `runner run --env-manager uv` vs `mlflow run --env-manager "
            f"{manager}`"
        ),
        available=lambda: c.cli_reason("run"),
        run_runner=runner_run(no_pyc),
        run_mlflow=mlflow_run(manager, no_pyc),
        mlflow_available=mlflow_reason(manager),
        prepare_runner=prepare_runner(no_pyc),
        prepare_mlflow=prepare_mlflow(manager, no_pyc),
        params=lambda _quick: f"MLflow --env-manager {manager}; {_tag(no_pyc)}",
    )


def _direct_case(manager: str, no_pyc: bool) -> Case:
    suffix = ("" if manager == "uv" else f"-{manager}") + ("-nopyc" if no_pyc else "")
    return Case(
        name=f"sklearn-direct{suffix}",
        description=(
            f"the same train.py run directly (`<env>/bin/python train.py`), {_tag(no_pyc)}: "
            f"in runner's env vs in the env of `mlflow run --env-manager {manager}`"
        ),
        available=lambda: c.cli_reason("run"),
        run_runner=direct_in_runner_env(no_pyc),
        run_mlflow=direct_in_mlflow_env(manager, no_pyc),
        mlflow_available=mlflow_reason(manager),
        prepare_runner=prepare_runner(no_pyc),
        prepare_mlflow=prepare_mlflow(manager, no_pyc),
        params=lambda _quick: f"script only, env of MLflow --env-manager {manager}; {_tag(no_pyc)}",
    )


CASES = [
    make(manager, no_pyc)
    for no_pyc in (False, True)
    for manager in ("uv", "virtualenv")
    for make in (_run_case, _direct_case)
]
