"""docker-rerun: re-run of an unchanged docker_env project, runner vs `mlflow run --build-image`."""

from __future__ import annotations

import functools
import importlib
import subprocess

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement, NotAvailable

PROJECT = c.PROJECTS / "docker"
IMAGE = "runner-test/python:3.11"  # what benchmarks/projects/docker/MLproject names


def _daemon_reason() -> str | None:
    if c.which("docker") is None:
        return "not available: no docker CLI on PATH"
    argv = ["docker", "info", "--format", "{{.ServerVersion}}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return None if proc.returncode == 0 else "not available: the Docker daemon does not answer"


def _helper_reason() -> str | None:
    if not (c.REPO / "tests" / "docker_images.py").is_file():
        return "not available: no local base-image helper (tests/docker_images.py)"
    if not c.has_module("docker"):
        return "not available: the docker Python package is not installed"
    return None


def available() -> str | None:
    if not c.has_module("backends.docker.backend"):
        return "not available: backends/docker.py does not exist yet"
    return c.cli_reason("run") or _daemon_reason() or _helper_reason()


def mlflow_available() -> str | None:
    return c.mlflow_reason() or _daemon_reason() or _helper_reason()


@functools.cache
def base_image() -> str:
    """Build (once per machine, cached by tag) the host-Python base image, no registry needed."""
    import docker

    helper = importlib.import_module("tests.docker_images")
    try:
        tag: str = helper.ensure_python_image(docker.from_env())
    except helper.ImageUnavailable as exc:
        raise NotAvailable(f"not available: {exc}") from exc
    if tag != IMAGE:
        raise NotAvailable(f"not available: base image is {tag}, the project names {IMAGE}")
    return tag


def run_runner(ctx: Context) -> Measurement:
    env = c.runner_env(ctx.scratch / "runner-home")
    return Measurement(c.timed(c.runner_run(PROJECT), env, ctx.scratch).seconds)


def run_mlflow(ctx: Context) -> Measurement:
    env = c.mlflow_run_env(ctx.scratch / "mlflow.db", ctx.scratch / "mlflow-envs")
    argv = c.mlflow_run(PROJECT, "--build-image")
    return Measurement(c.timed(argv, env, ctx.scratch).seconds)


def prepare_runner(ctx: Context) -> None:
    """The untimed first run; refuses to time a docker_env project run on the host."""
    base_image()
    run_runner(ctx)
    backend = c.last_run(c.runner_env(ctx.scratch / "runner-home")).get("backend")
    if backend != "docker":
        raise NotAvailable(
            f"not available: `runner run` ran the docker_env project with backend {backend!r}, "
            "not in a container (the docker backend is not wired into `runner run` yet)"
        )


def prepare_mlflow(ctx: Context) -> None:
    base_image()
    run_mlflow(ctx)


CASES = [
    Case(
        name="docker-rerun",
        description=(
            "benchmarks/projects/docker (docker_env on a locally built host-Python image), "
            "re-run after an untimed first run: `runner run` vs `mlflow run --build-image` "
            "(which rebuilds the image every time)"
        ),
        available=available,
        run_runner=run_runner,
        run_mlflow=run_mlflow,
        mlflow_available=mlflow_available,
        prepare_runner=prepare_runner,
        prepare_mlflow=prepare_mlflow,
    )
]
