"""Containers reach the run's embedded MLflow API through the host gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.store.open import open_store
from tests.docker_images import PROJECT_PREFIX
from tests.helpers import run_cli, write_project

PROBE = """
import json, os, urllib.request
url, run_id = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_RUN_ID"]
body = json.dumps({"run_id": run_id, "key": "from_container", "value": 7.5, "step": 2,
                   "timestamp": 1700000000000}).encode()
request = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/log-metric", data=body, method="POST",
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"],
             "Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=20) as answer:
    print("RESULT=" + json.dumps({"url": url, "status": answer.status}))
"""


def _result(output: str) -> dict[str, object]:
    line = next(line for line in output.splitlines() if line.startswith("RESULT="))
    return dict(json.loads(line.removeprefix("RESULT=")))


def test_a_container_logs_through_the_embedded_api(tmp_path: Path, python_image: str) -> None:
    project = write_project(
        tmp_path / "probe",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-mlflow-probe
                docker_env: {{image: {python_image}}}
                entry_points:
                  main: {{command: "python probe.py"}}
            """,
            "probe.py": PROBE,
        },
    )
    done = run_cli("run", str(project), "--mlflow-api")
    assert done.returncode == 0, done.stderr + done.stdout
    seen = _result(done.stdout)
    assert str(seen["url"]).startswith("http://host.docker.internal:")
    assert seen["status"] == 200
    run_id = done.stderr.split("run ", 1)[1].split(" ", 1)[0]
    record = open_store().get_run(run_id)
    assert record.backend == "docker" and record.metrics == {"from_container": 7.5}


@pytest.mark.slow
def test_the_real_mlflow_client_in_a_container(
    tmp_path: Path, python_image: str, runner_home: Path
) -> None:
    script = (
        "import mlflow, pathlib; "
        "mlflow.log_param('where', 'container'); "
        "mlflow.log_metric('m', 2.0, step=1); "
        "pathlib.Path('out.txt').write_text('made in a container'); "
        "mlflow.log_artifact('out.txt')"
    )
    project = write_project(
        tmp_path / "client",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-mlflow-client
                python_env: python_env.yaml
                entry_points:
                  main: {{command: "python -c \\"{script}\\""}}
            """,
            "python_env.yaml": "python: '3.11'\ndependencies: ['mlflow-skinny>=3.0']\n",
        },
    )
    config = json.dumps({"base_image": python_image})
    done = run_cli("run", str(project), "-b", "docker", "-c", config, timeout=900)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = done.stderr.split("run ", 1)[1].split(" ", 1)[0]
    record = open_store().get_run(run_id)
    assert record.parameters == {"where": "container"}
    assert record.metrics == {"m": 2.0}
    files = runner_home / "artifacts" / run_id / "files"
    assert (files / "out.txt").read_text() == "made in a container"
