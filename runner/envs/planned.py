"""Managers MLflow has and runner does not yet: chosen like the others, then refused with a hint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.envs.base import BaseEnvManager
from runner.errors import EnvBuildError

if TYPE_CHECKING:
    from runner.project.records import ProjectSpec


class CondaPlaceholder(BaseEnvManager):
    """Holds conda's place (its kinds, MLflow's default for conda_env) until it is installed."""

    name = "conda"
    kinds = ("system", "conda_env")
    default_for = ("conda_env",)
    builds_prefix = False

    def preflight(self, spec: ProjectSpec) -> None:
        raise EnvBuildError(
            "conda environments are not available yet",
            hint="use --env-manager uv: it reads the python pin and the pip "
            "section of the conda file",
        )
