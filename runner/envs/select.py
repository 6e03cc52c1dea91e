"""Choosing the environment manager from ``--env-manager`` and the project's env kind."""

from __future__ import annotations

from collections.abc import Callable

from runner.envs.base import EnvManager
from runner.envs.registry import find_manager, get_manager, installed_managers
from runner.errors import EnvBuildError, RunnerError, UsageError
from runner.project.records import ProjectSpec


def choose_manager(spec: ProjectSpec, requested: str | None) -> str:
    """The canonical name of the manager to use, e.g. ``uv`` for ``virtualenv``."""
    return choose(spec, requested).name


def default_backend(manager_name: str) -> str | None:
    """The backend a run of this manager gets when none is requested (None: local)."""
    return get_manager(manager_name).default_backend


def choose(spec: ProjectSpec, requested: str | None) -> EnvManager:
    """The manager for ``spec``: the kind's default, or the one requested if it serves the kind.

    As in MLflow, a project without an env file runs in the system environment, and a
    docker_env project runs in its image whatever ``--env-manager`` says.
    """
    kind = spec.env.kind
    manager = _default(kind) if requested is None else _requested(requested)
    forced = _first(lambda m: kind in m.forced_for)
    if forced is not None:
        manager = forced
    elif kind not in manager.kinds:
        raise _mismatch(spec, manager)
    manager.preflight(spec)
    return manager


def _first(claims: Callable[[EnvManager], bool]) -> EnvManager | None:
    """The first installed manager that claims the kind (entry-point order breaks ties)."""
    return next((m for m in installed_managers() if claims(m)), None)


def _default(kind: str) -> EnvManager:
    manager = _first(lambda m: kind in m.default_for)
    if manager is None:
        raise EnvBuildError(
            f"no installed environment manager is the default for {kind} projects",
            hint=f"choose one with --env-manager: {', '.join(_names())}",
        )
    return manager


def _requested(requested: str) -> EnvManager:
    manager = find_manager(requested.strip().lower())
    if manager is not None:
        return manager
    raise UsageError(f"Invalid value for --env-manager: {requested!r}. Must be one of {_names()}")


def _names() -> list[str]:
    return sorted(name for m in installed_managers() for name in (m.name, *m.aliases))


def _mismatch(spec: ProjectSpec, manager: EnvManager) -> UsageError:
    kind = spec.env.kind
    serving = sorted(
        (m for m in installed_managers() if kind in m.kinds and _usable(m, spec)),
        key=lambda m: (kind not in m.default_for, m.name),  # the kind's default first
    )
    if "system" in manager.kinds:  # MLflow's message: it runs anywhere but on this kind
        choices = " or ".join(_quoted(m) for m in serving)
        return UsageError(
            f"{kind} project cannot be executed using {manager.name}. Set --env-manager "
            f"to {choices} to execute this project."
        )
    return UsageError(
        f"--env-manager {manager.name} needs a {' or '.join(manager.kinds)} section in MLproject",
        hint=f"use --env-manager {' or '.join(m.name for m in serving)}",
    )


def _usable(manager: EnvManager, spec: ProjectSpec) -> bool:
    """Whether to suggest ``manager``: one that would be refused here is no advice."""
    try:
        manager.preflight(spec)
    except RunnerError:
        return False
    return True


def _quoted(manager: EnvManager) -> str:
    aliases = ", ".join(f"'{alias}'" for alias in manager.aliases)
    return f"'{manager.name}'" + (f" (or {aliases})" if aliases else "")
