"""The ``docker`` manager: a docker_env project runs in its image, which the backend builds."""

from __future__ import annotations

from runner.envs.base import BaseEnvManager


class DockerManager(BaseEnvManager):
    name = "docker"
    kinds = ("docker_env",)
    default_for = ("docker_env",)
    forced_for = ("docker_env",)  # MLflow runs the image whatever --env-manager says
    default_backend = "docker"
    builds_prefix = False
