"""Choosing the environment manager from ``--env-manager`` and the project's env file."""

from __future__ import annotations

from runner.errors import EnvBuildError, UsageError
from runner.project.records import ProjectSpec

ALLOWED = ("local", "uv", "virtualenv", "conda", "docker")
ALIASES = {"virtualenv": "uv"}  # MLflow's name for a venv-based env
# As MLflow, except that a project without an env file runs in the system environment.
DEFAULTS = {"python_env": "uv", "conda_env": "conda", "docker_env": "docker", "system": "local"}


def choose_manager(spec: ProjectSpec, requested: str | None) -> str:
    """The manager to use: ``local``, ``uv`` or ``docker`` (conda is not available yet)."""
    kind = spec.env.kind
    if requested is None:
        manager = DEFAULTS[kind]
    else:
        manager = _canonical(requested)
        _check_fits(kind, manager)
    if kind == "docker_env":
        # MLflow runs a docker_env project in its image whatever --env-manager says.
        return "docker"
    if manager == "conda":
        raise EnvBuildError(
            "conda environments are not available yet",
            hint="use --env-manager uv: it reads the python pin and the pip "
            "section of the conda file",
        )
    return manager


def _canonical(requested: str) -> str:
    name = requested.strip().lower()
    if name not in ALLOWED:
        raise UsageError(
            f"Invalid value for --env-manager: {requested!r}. Must be one of {list(ALLOWED)}"
        )
    return ALIASES.get(name, name)


def _check_fits(kind: str, manager: str) -> None:
    if kind == "python_env" and manager == "conda":
        raise UsageError(
            "python_env project cannot be executed using conda. Set "
            "--env-manager to 'uv' (or 'virtualenv') or 'local' to execute "
            "this project."
        )
    if manager == "docker" and kind != "docker_env":
        raise UsageError(
            "--env-manager docker needs a docker_env section in MLproject",
            hint="use --env-manager uv or local",
        )
