"""Environment managers found through the ``runner.env_managers`` entry points."""

from __future__ import annotations

import functools

from runner.envs.base import EnvManager
from runner.errors import EnvBuildError

ENTRY_POINT_GROUP = "runner.env_managers"
_HINT = f"environment managers register under the {ENTRY_POINT_GROUP!r} entry-point group"


@functools.cache
def loaded_managers() -> dict[str, EnvManager | str]:
    """Entry-point name → the manager, or why it failed to load (reported only if chosen).

    Every manager is loaded: aliases and defaults are declared on the managers themselves.
    One broken plugin must not stop runs that never ask for it.
    """
    from runner.plugins import entry_points_of

    return {name: _load(name, value) for name, value in entry_points_of(ENTRY_POINT_GROUP).items()}


def _load(name: str, value: str) -> EnvManager | str:
    from runner.plugins import load_object

    try:
        manager = load_object(value)()
    except Exception as exc:  # a broken plugin must not crash the CLI with a traceback
        return f"environment manager {name!r} failed to load: {exc}"
    if not isinstance(manager, EnvManager):
        return f"environment manager {name!r} does not implement the runner EnvManager protocol"
    if manager.name != name:
        return f"environment manager {name!r} calls itself {manager.name!r}"
    return manager


def installed_managers() -> list[EnvManager]:
    """The managers that loaded, in entry-point order."""
    return [m for m in loaded_managers().values() if not isinstance(m, str)]


def find_manager(name: str) -> EnvManager | None:
    """The manager called ``name`` (or with that alias); None when none is installed."""
    loaded = loaded_managers().get(name)
    if isinstance(loaded, str):
        raise EnvBuildError(loaded, hint=_HINT)
    if loaded is not None:
        return loaded
    return next((m for m in installed_managers() if name in m.aliases), None)


def get_manager(name: str) -> EnvManager:
    """The installed manager ``name``; unknown names list the installed ones."""
    manager = find_manager(name)
    if manager is None:
        names = ", ".join(sorted(m.name for m in installed_managers())) or "(none installed)"
        raise EnvBuildError(
            f"unknown environment manager {name!r}; installed: {names}",
            hint=_HINT,
        )
    return manager
