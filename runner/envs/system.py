"""The ``local`` manager: the system environment, as is (nothing is built or recorded as locked)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from runner.envs.base import BaseEnvManager, EnvLock, Progress

if TYPE_CHECKING:
    from runner.project.records import ProjectSpec


class SystemManager(BaseEnvManager):
    name = "local"
    # an env file is then ignored, as MLflow's --env-manager local does
    kinds = ("system", "python_env", "conda_env")
    default_for = ("system",)
    builds_prefix = False

    def lock(self, spec: ProjectSpec, *, progress: Progress, refresh: bool) -> EnvLock:
        return EnvLock(python=current_python())


def current_python() -> str:
    """This interpreter's version, e.g. "3.11.7" (sys, not platform: platform costs 8 ms)."""
    return "{}.{}.{}".format(*sys.version_info[:3])
