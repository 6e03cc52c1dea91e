"""MLflow's client in a container reaches the host's MLflow API as the runner's own client does."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.docker.build import container_options, mlflow_plan
from runner.backend import LaunchRequest
from runner.project.records import DockerEnv, EnvSpec, ProjectSpec


@pytest.mark.parametrize(
    ("uri", "network", "seen", "hosts"),
    [
        ("http://127.0.0.1:4321", None, "http://host.docker.internal:4321", True),
        ("http://localhost:5005/prefix", "bridge", "http://host.docker.internal:5005/prefix", True),
        ("http://127.0.0.1:4321", "host", "http://127.0.0.1:4321", False),
        ("https://tracking.example.com", None, "https://tracking.example.com", False),
    ],
)
def test_mlflow_tracking_uri_is_rewritten_like_the_runners(
    uri: str, network: str | None, seen: str, hosts: bool
) -> None:
    plan = mlflow_plan({"MLFLOW_TRACKING_URI": uri}, network)
    assert plan.env == {"MLFLOW_TRACKING_URI": seen}
    assert plan.extra_hosts == ({"host.docker.internal": "host-gateway"} if hosts else {})


def test_no_mlflow_uri_adds_nothing() -> None:
    assert mlflow_plan({"RUNNER_RUN_ID": "r"}, None) == mlflow_plan({}, None)
    assert mlflow_plan({}, None).env == {} and mlflow_plan({}, None).extra_hosts == {}


def test_the_container_gets_the_rewritten_uri_the_token_and_the_host_alias(tmp_path: Path) -> None:
    spec = ProjectSpec(tmp_path, "p", EnvSpec("docker_env", docker=DockerEnv("img")))
    env = {
        "RUNNER_RUN_ID": "run-1",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:4321",
        "MLFLOW_TRACKING_TOKEN": "secret-token",
        "MLFLOW_RUN_ID": "run-1",
    }
    request = LaunchRequest("run-1", "python t.py", tmp_path, env, spec)
    options = container_options(request, {})
    assert options["environment"]["MLFLOW_TRACKING_URI"] == "http://host.docker.internal:4321"
    assert options["environment"]["MLFLOW_TRACKING_TOKEN"] == "secret-token"
    assert options["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    assert "secret-token" not in " ".join(options["command"])  # through the API, not argv
