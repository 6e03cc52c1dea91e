"""Code written for MLflow's API, run in a pod, logs into its runner run over the server.

The project has a python_env with ``mlflow-skinny`` (the lock is installed into the pod image);
its ``train.py`` only calls ``mlflow.log_param`` / ``mlflow.log_metric``. The pod reaches the
runner server by the ``tracking-uri`` of the backend config, as on a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.store.open import open_store
from tests.helpers import records, run_cli, write_project
from tests.k8s_emulator import Emulator
from tests.live_server import free_port, server_process

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOKEN = "k8s-mlflow-token"
MLFLOW_SKINNY = "mlflow-skinny==3.17.2"  # a wheel the package index here has

TRAIN = """
import mlflow

print("tracking=" + mlflow.get_tracking_uri())
mlflow.log_param("alpha", 0.5)
for step, loss in enumerate([0.9, 0.4, 0.2]):
    mlflow.log_metric("loss", loss, step=step)
mlflow.log_metric("accuracy", 0.75)
print("active=" + mlflow.active_run().info.run_id)
"""


def _mlflow_project(root: Path) -> Path:
    return write_project(
        root,
        {
            "MLproject": """
                name: k8s-mlflow
                python_env: python_env.yaml
                entry_points:
                  main: {command: "python train.py"}
            """,
            "python_env.yaml": f"python: '3.11'\ndependencies: ['{MLFLOW_SKINNY}']\n",
            "train.py": TRAIN,
        },
    )


def test_mlflow_log_param_and_metric_in_a_pod_land_in_the_run(
    tmp_path: Path,
    config: Callable[..., Path],
    python_image: str,
    emulator: Emulator,
    host_address: str,
) -> None:
    proj = _mlflow_project(tmp_path / "proj")
    port = free_port()
    server = f"http://{host_address}:{port}"
    args = ("--host", "0.0.0.0", "--token", TOKEN, "--allowed-host", host_address)
    cfg = config(**{"tracking-uri": server, "base_image": python_image})
    with server_process(port, args=args, token=TOKEN):
        result = run_cli(
            "run",
            str(proj),
            "-b",
            "kubernetes",
            "-c",
            str(cfg),
            env={"RUNNER_TRACKING_TOKEN": TOKEN},
            timeout=900,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr  # no record was refused or lost on the way
    (run,) = records()
    run_id = run["run_id"]
    assert f"tracking={server}" in result.stdout  # the server, not the runner's loopback
    assert f"active={run_id}" in result.stdout  # MLflow joined the run, it made none of its own
    assert run["status"] == "FINISHED"
    (pod,) = emulator.pods()
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == server
    assert env["MLFLOW_RUN_ID"] == run_id
    assert env["MLFLOW_TRACKING_TOKEN"] == TOKEN
    store = open_store()
    stored = store.get_run(run_id)
    assert stored.parameters == {"alpha": "0.5"}
    assert stored.metrics == {"loss": 0.2, "accuracy": 0.75}
    history = [(p.step, p.value) for p in store.metric_history(run_id, "loss")]
    assert history == [(0, 0.9), (1, 0.4), (2, 0.2)]
    assert [p.step for p in store.metric_history(run_id, "accuracy")] == [0]
    shown = json.loads(run_cli("runs", "show", run_id, "--json").stdout)
    assert shown["parameters"] == {"alpha": "0.5"}
