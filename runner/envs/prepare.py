"""The one entry point for environments: choose a manager, then lock, build and lease the env."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from runner.envs import PreparedEnv
from runner.envs.base import EnvLock, EnvManager, Progress
from runner.envs.select import choose

if TYPE_CHECKING:
    from runner.envs.cache import CachedEnv
    from runner.project.records import ProjectSpec


def _silent(message: str) -> None:
    """Progress goes nowhere unless the caller asks for it."""


def prepare_env(
    spec: ProjectSpec,
    manager_name: str | None,
    *,
    progress: Progress | None = None,
    refresh: bool = False,
    build: bool = True,
) -> PreparedEnv:
    """A ready environment for ``spec``, built only when no cached one is usable.

    ``refresh`` re-resolves instead of reusing the last resolution. ``build=False`` locks
    only, for a backend that installs the lock itself (into an image): no prefix.
    """
    report = progress or _silent
    manager = choose(spec, manager_name)
    lock = manager.lock(spec, progress=report, refresh=refresh)
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
