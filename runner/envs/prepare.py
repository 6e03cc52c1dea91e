"""The one entry point for environments: choose a manager, then lock, build and lease the env."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Protocol, cast

from runner.envs import PreparedEnv
from runner.envs.base import EnvLock, EnvManager, Progress
from runner.envs.select import choose

if TYPE_CHECKING:
    from runner.envs.cache import CachedEnv
    from runner.project.records import ProjectSpec


PYTHON_MATCHES = ("exact", "minor")


class _MatchingLock(Protocol):
    """``lock`` of a manager that declares ``python_matches`` with "minor"."""

    def __call__(
        self, spec: ProjectSpec, *, progress: Progress, refresh: bool, python_match: str
    ) -> EnvLock: ...


def _silent(message: str) -> None:
    """Progress goes nowhere unless the caller asks for it."""


def honours_python_match(manager: EnvManager, python_match: str) -> bool:
    """Whether ``manager`` picks its interpreter as ``--python-match`` asks ("exact" always)."""
    return python_match == "exact" or python_match in getattr(manager, "python_matches", ())


def prepare_env(
    spec: ProjectSpec,
    manager_name: str | None,
    *,
    progress: Progress | None = None,
    refresh: bool = False,
    build: bool = True,
    python_match: str = "exact",
) -> PreparedEnv:
    """A ready environment for ``spec``, built only when no cached one is usable.

    ``refresh`` re-resolves instead of reusing the last resolution. ``build=False`` locks
    only, for a backend that installs the lock itself (into an image): no prefix.
    ``python_match="minor"`` lets a manager that honours it use the newest installed patch
    release of the pinned minor version (a manager that does not ignores it).
    """
    report = progress or _silent
    manager = choose(spec, manager_name)
    lock = _lock(manager, spec, report, refresh, python_match)
    if not manager.builds_prefix:
        return _locked(manager, lock, key=None)
    if not build:
        return _locked(manager, lock, key=manager.key(lock))
    from runner.envs.cache import ensure_env, record_use

    env = ensure_env(manager, manager.key(lock), lock, progress=report)
    record_use(env.path)
    if not env.built:
        python = f" (Python {lock.python})" if lock.python else ""
        report(f"using cached environment {env.path.name[:12]}{python}")
    return _cached(manager, lock, env)


def _lock(
    manager: EnvManager, spec: ProjectSpec, report: Progress, refresh: bool, python_match: str
) -> EnvLock:
    if python_match == "exact" or not honours_python_match(manager, python_match):
        return manager.lock(spec, progress=report, refresh=refresh)
    matching = cast(_MatchingLock, manager.lock)  # the manager declared it in python_matches
    return matching(spec, progress=report, refresh=refresh, python_match=python_match)


def _locked(manager: EnvManager, lock: EnvLock, *, key: str | None) -> PreparedEnv:
    """An env with nothing on the host: the system's, or a lock a backend installs itself."""
    return PreparedEnv(
        manager=manager.name,
        key=key,
        python=lock.python,
        lock=lock.content or None,
        details=lock.details(),
        warnings=lock.warnings,
    )


def _cached(manager: EnvManager, lock: EnvLock, env: CachedEnv) -> PreparedEnv:
    details = {**lock.details(), **(env.marker.get("facts") or {})}
    if env.rebuilt is not None:
        details["rebuilt"] = env.rebuilt  # why the cached env was unusable, as tox explains
    return PreparedEnv(
        manager=manager.name,
        key=env.marker["key"],
        prefix=env.path,
        python=lock.python,
        lock=lock.content or None,
        details=details,
        reused=not env.built,
        warnings=lock.warnings,
        activation=manager.activate(env.path),
    )


def lease_env(
    prepared: PreparedEnv, *, run_id: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """Hold while a run uses the env: ``runner env gc`` never deletes a leased env."""
    if prepared.prefix is None or prepared.key is None:
        return contextlib.nullcontext()
    from runner.envs.cache import lease, record_use

    if run_id is not None:
        record_use(prepared.prefix, run_id)
    return lease(prepared.prefix)
