"""choose_manager and the registry: defaults from the project, aliases, plugins, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.envs import registry
from runner.envs.select import choose_manager, default_backend
from runner.errors import EnvBuildError, UsageError
from runner.project.records import DockerEnv, EnvSpec, ProjectSpec
from tests.plugins import TOY_MANAGER, install_toy_manager, use_site, write_dist_info


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
        "Must be one of ['conda', 'docker', 'local', 'uv', 'virtualenv']"
    )


def test_python_env_with_conda_is_refused_like_mlflow() -> None:
    with pytest.raises(UsageError) as err:
        choose_manager(project("python_env"), "conda")
    assert err.value.message == (
        "python_env project cannot be executed using conda. Set --env-manager to "
        "'uv' (or 'virtualenv') or 'local' to execute this project."
    )


@pytest.mark.parametrize(("kind", "requested"), [("conda_env", None), ("system", "conda")])
def test_conda_serves_conda_env_by_default_and_plain_projects_on_request(
    kind: str, requested: str | None
) -> None:
    assert choose_manager(project(kind), requested) == "conda"


def test_conda_env_project_can_run_with_uv() -> None:
    assert choose_manager(project("conda_env"), "virtualenv") == "uv"


@pytest.mark.parametrize(
    ("kind", "hint"), [("python_env", "uv or local"), ("system", "local or conda or uv")]
)
def test_docker_without_docker_env_is_refused(kind: str, hint: str) -> None:
    with pytest.raises(UsageError) as err:
        choose_manager(project(kind), "docker")
    assert err.value.message == "--env-manager docker needs a docker_env section in MLproject"
    assert err.value.hint == f"use --env-manager {hint}"


def test_only_the_docker_manager_has_a_backend_of_its_own() -> None:
    assert [default_backend(name) for name in ("docker", "uv", "local")] == ["docker", None, None]


def test_an_unknown_manager_lists_the_installed_ones() -> None:
    with pytest.raises(EnvBuildError) as err:
        registry.get_manager("pipenv")
    assert err.value.message == (
        "unknown environment manager 'pipenv'; installed: conda, docker, local, uv"
    )
    assert err.value.hint is not None and "'runner.env_managers'" in err.value.hint


# --- plugins: a distribution on sys.path registers more managers ------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path to install distributions into."""
    use_site(tmp_path, monkeypatch)
    return tmp_path


def test_a_plugin_manager_is_chosen_by_name_or_alias(site: Path) -> None:
    install_toy_manager(site)
    assert choose_manager(project("system"), "toy") == "toy"
    assert choose_manager(project("python_env"), "ToyBox") == "toy"
    assert choose_manager(project("system"), None) == "local"  # defaults are unchanged
    with pytest.raises(UsageError) as err:
        choose_manager(project("conda_env"), "toy")
    assert err.value.message == (
        "conda_env project cannot be executed using toy. Set --env-manager to "
        "'conda' or 'local' or 'uv' (or 'virtualenv') to execute this project."
    )


def test_the_invalid_name_message_lists_plugins_too(site: Path) -> None:
    install_toy_manager(site)
    with pytest.raises(UsageError) as err:
        choose_manager(project("system"), "pipenv")
    assert err.value.message.endswith(
        "Must be one of ['conda', 'docker', 'local', 'toy', 'toybox', 'uv', 'virtualenv']"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:M", "failed to load: No module named 'no_such_module_xyz'"),
        ("builtins:object", "does not implement the runner EnvManager protocol"),
        (TOY_MANAGER, "calls itself 'toy'"),
    ],
)
def test_a_broken_plugin_fails_only_when_chosen(site: Path, target: str, message: str) -> None:
    write_dist_info(site, "broken", {"runner.env_managers": {"broken": target}})
    assert choose_manager(project("python_env"), None) == "uv"
    with pytest.raises(EnvBuildError) as err:
        choose_manager(project("system"), "broken")
    assert err.value.message == f"environment manager 'broken' {message}"


def test_a_kind_without_an_installed_default_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    # as if the docker manager's distribution were uninstalled
    loaded = {k: v for k, v in registry.loaded_managers().items() if k != "docker"}
    monkeypatch.setattr(registry, "loaded_managers", lambda: loaded)
    with pytest.raises(EnvBuildError) as err:
        choose_manager(project("docker_env"), None)
    assert (
        err.value.message
        == "no installed environment manager is the default for docker_env projects"
    )
    assert err.value.hint == "choose one with --env-manager: conda, local, uv, virtualenv"
