"""A pod's MLflow variables: the tracking server's URL and token, never the host's own API's."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.kubernetes.backend import KubernetesBackend, pod_env
from runner.backend import LaunchRequest
from runner.project.spec import load_spec
from tests.helpers import write_project

RUN_ID = "0466787b516743e99f9bedbccd9f82d3"
SERVER = "http://tracking.example.internal:5000"
# what the orchestrator hands the backend for a database store and an env with MLflow: the
# variables of the embedded MLflow API it serves on the runner's loopback for the run
EMBEDDED = {
    "RUNNER_RUN_ID": RUN_ID,
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:40123",
    "MLFLOW_TRACKING_TOKEN": "embedded-api-token",
    "MLFLOW_RUN_ID": RUN_ID,
    "MLFLOW_EXPERIMENT_ID": "1",
}


def _request(tmp_path: Path, env: dict[str, str]) -> LaunchRequest:
    root = write_project(
        tmp_path / "proj", {"MLproject": "name: p\nentry_points:\n  main: {command: 'true'}\n"}
    )
    config = {"repository-uri": "registry.example.internal/team/p", "tracking-uri": SERVER}
    return LaunchRequest(RUN_ID, "python train.py", root, env, load_spec(root), config=config)


def test_the_pod_sends_the_servers_token_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_TRACKING_TOKEN", "server-token")
    env = pod_env(_request(tmp_path, EMBEDDED), SERVER)
    assert env["MLFLOW_TRACKING_URI"] == SERVER
    assert env["MLFLOW_RUN_ID"] == RUN_ID
    assert env["MLFLOW_TRACKING_TOKEN"] == "server-token"
    assert env["RUNNER_TRACKING_TOKEN"] == "server-token"
    assert env["MLFLOW_EXPERIMENT_ID"] == "1"


def test_without_a_server_token_the_embedded_apis_token_is_not_passed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNER_TRACKING_TOKEN", raising=False)
    env = pod_env(_request(tmp_path, EMBEDDED), SERVER)
    assert "MLFLOW_TRACKING_TOKEN" not in env
    assert "RUNNER_TRACKING_TOKEN" not in env
    assert env["MLFLOW_TRACKING_URI"] == SERVER


def test_dry_run_masks_both_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.setenv("RUNNER_TRACKING_TOKEN", "server-token")
    text = KubernetesBackend().render(_request(tmp_path, EMBEDDED))
    (job,) = yaml.safe_load_all(text)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_TOKEN"] == "***"
    assert env["RUNNER_TRACKING_TOKEN"] == "***"
    assert "server-token" not in text
    assert "embedded-api-token" not in text
