"""choose_manager: defaults from the project, aliases, refusals with their messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.envs.select import choose_manager
from runner.errors import EnvBuildError, UsageError
from runner.project.records import DockerEnv, EnvSpec, ProjectSpec


def project(kind: str) -> ProjectSpec:
    docker = DockerEnv(image="python:3.11") if kind == "docker_env" else None
    file = Path("/p/env.yaml") if kind in ("python_env", "conda_env") else None
    return ProjectSpec(root=Path("/p"), name="p", env=EnvSpec(kind=kind, file=file, docker=docker))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("python_env", "uv"), ("system", "local"), ("docker_env", "docker")],
)
def test_default_comes_from_the_project(kind: str, expected: str) -> None:
    assert choose_manager(project(kind), None) == expected


@pytest.mark.parametrize("requested", ["virtualenv", "uv", "UV", " virtualenv "])
def test_virtualenv_is_an_alias_of_uv(requested: str) -> None:
    assert choose_manager(project("python_env"), requested) == "uv"


def test_local_can_be_forced_on_a_python_env_project() -> None:
    assert choose_manager(project("python_env"), "local") == "local"


def test_a_system_project_can_ask_for_uv() -> None:
    assert choose_manager(project("system"), "uv") == "uv"


def test_a_docker_env_project_always_runs_in_docker_as_in_mlflow() -> None:
    assert choose_manager(project("docker_env"), "local") == "docker"


def test_invalid_name_lists_the_allowed_values() -> None:
    with pytest.raises(UsageError) as err:
        choose_manager(project("python_env"), "pipenv")
    assert err.value.message == (
        "Invalid value for --env-manager: 'pipenv'. "
        "Must be one of ['local', 'uv', 'virtualenv', 'conda', 'docker']"
    )


def test_python_env_with_conda_is_refused_like_mlflow() -> None:
    with pytest.raises(UsageError, match="python_env project cannot be executed using conda"):
        choose_manager(project("python_env"), "conda")


@pytest.mark.parametrize(("kind", "requested"), [("conda_env", None), ("system", "conda")])
def test_conda_is_not_available_yet(kind: str, requested: str | None) -> None:
    with pytest.raises(EnvBuildError) as err:
        choose_manager(project(kind), requested)
    assert err.value.message == "conda environments are not available yet"
    assert err.value.hint is not None and "--env-manager uv" in err.value.hint


def test_conda_env_project_can_run_with_uv() -> None:
    assert choose_manager(project("conda_env"), "virtualenv") == "uv"


def test_docker_without_docker_env_is_refused() -> None:
    with pytest.raises(UsageError, match="needs a docker_env section"):
        choose_manager(project("python_env"), "docker")
