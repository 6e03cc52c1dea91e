"""conda-*: conda_env projects built by runner with rattler from a local channel (runner only).

MLflow cannot build a conda env without a conda installation, and no conda-compatible
executable (conda, mamba, micromamba) installs from the package indexes reachable here, so
there is no other side to compare with.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement, NotAvailable

TINY = c.PROJECTS / "conda-env"
PYTHON = c.PROJECTS / "conda-python"


def available() -> str | None:
    if not c.has_module("runner.envs.conda.manager") or not c.has_module("rattler"):
        return "not available: runner's conda manager (py-rattler) is not installed"
    return c.cli_reason("run")


def _project(ctx: Context, source: Path) -> Path:
    """The project copied into the scratch dir, with its ./channel made there (untimed)."""
    target = ctx.scratch / source.name
    if not target.exists():
        sys.path.insert(0, str(c.REPO))
        from tests import conda_channel as ch

        shutil.copytree(source, target)
        if source == TINY:
            activate = {"etc/conda/activate.d/g.sh": "export GREETING=hi\n"}
            packages = [
                ch.tiny("greeting", "1.0", files=activate),
                ch.tiny("hello", "2.0", depends=["greeting >=1"]),
                ch.tiny("extra", "0.1"),
            ]
        else:
            packages = [ch.host_python(), ch.host_pip()]
        ch.build_channel(target / "channel", packages)
    return target


def _run(ctx: Context, project: Path, home: Path) -> Measurement:
    env = c.runner_env(home, RUNNER_TRACKING_URI=f"sqlite:///{ctx.scratch / 'runner.db'}")
    m = c.timed(c.runner_run(project, "--env-manager", "conda"), env, ctx.scratch)
    return Measurement(m.seconds)


def cold(source: Path) -> Callable[[Context], Measurement]:
    """A fresh RUNNER_HOME: solve, fetch into an empty package cache, link (uv's cache warm)."""

    def run(ctx: Context) -> Measurement:
        project = _project(ctx, source)
        home = c.fresh_dir(ctx.scratch, "runner-home-")
        try:
            return _run(ctx, project, home)
        finally:
            shutil.rmtree(home, ignore_errors=True)

    return run


def new_env(source: Path) -> Callable[[Context], Measurement]:
    """Envs and remembered solves removed, the conda package cache kept: a changed spec."""

    def run(ctx: Context) -> Measurement:
        project = _project(ctx, source)
        home = ctx.scratch / "runner-home-new"
        shutil.rmtree(home / "envs", ignore_errors=True)
        return _run(ctx, project, home)

    return run


def warm(source: Path) -> Callable[[Context], Measurement]:
    def run(ctx: Context) -> Measurement:
        return _run(ctx, _project(ctx, source), ctx.scratch / "runner-home")

    return run


def prepare(source: Path) -> Callable[[Context], None]:
    """An untimed first run; it must really have built a conda env."""

    def run(ctx: Context) -> None:
        home = ctx.scratch / "runner-home"
        warm(source)(ctx)
        new_env(source)(ctx)  # fills that case's package cache
        env = c.runner_env(home, RUNNER_TRACKING_URI=f"sqlite:///{ctx.scratch / 'runner.db'}")
        record = c.last_run(env).get("environment") or {}
        if record.get("manager") != "conda" or not record.get("prefix"):
            raise NotAvailable(f"not available: the run recorded no conda env ({record})")

    return run


def _cases(name: str, source: Path, what: str) -> list[Case]:
    return [
        Case(
            name=f"{name}-cold",
            description=f"{what}, fresh RUNNER_HOME each round (empty conda package cache; "
            "uv's cache warm): solve, fetch, link, run",
            available=available,
            run_runner=cold(source),
            prepare_runner=prepare(source),
        ),
        Case(
            name=f"{name}-new-env",
            description=f"{what}, env dir and remembered solve removed each round, conda "
            "package cache kept (what a changed spec costs)",
            available=available,
            run_runner=new_env(source),
            prepare_runner=prepare(source),
        ),
        Case(
            name=f"{name}-warm",
            description=f"{what}, second run with the env cached",
            available=available,
            run_runner=warm(source),
            prepare_runner=prepare(source),
        ),
    ]


CASES = [
    *_cases("conda-env", TINY, "benchmarks/projects/conda-env: 3 tiny noarch packages"),
    *_cases(
        "conda-python",
        PYTHON,
        "benchmarks/projects/conda-python: python=3.11 (17 MB, repackaged), pip, pip: six",
    ),
]
