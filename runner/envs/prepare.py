"""The one entry point for environments: choose a manager, then prepare and lease the env."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from runner.envs import PreparedEnv
from runner.envs.select import choose_manager
from runner.project.records import ProjectSpec


def _current_python() -> str:
    """This interpreter's version, e.g. "3.11.7" (sys, not platform: platform costs 8 ms)."""
    return "{}.{}.{}".format(*sys.version_info[:3])


def prepare_env(
    spec: ProjectSpec,
    requested_manager: str | None,
    *,
    progress: Callable[[str], None] | None = None,
    refresh: bool = False,
    build: bool = True,
) -> PreparedEnv:
    """A ready environment for ``spec``; ``local`` and ``docker`` build nothing here.

    ``build=False`` resolves and locks only, for a backend that installs the lock itself.
    """
    manager = choose_manager(spec, requested_manager)
    if manager == "uv":
        from runner.envs.python.manager import prepare_python_env

        return prepare_python_env(spec, manager, progress=progress, refresh=refresh, build=build)
    if manager == "local":
        return PreparedEnv(manager="local", python=_current_python())
    # docker: the backend builds or pulls the image from the docker_env section.
    return PreparedEnv(manager=manager)


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
