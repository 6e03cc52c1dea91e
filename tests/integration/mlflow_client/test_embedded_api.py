"""The embedded MLflow API's rules, seen from an entry point: only the run's own token is
accepted, it lives only while the run does, and runs without MLflow never get it."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from runner.store.open import open_store
from tests.helpers import run_cli, write_project

PROBE = """
import json, os, urllib.error, urllib.request

url = os.environ["MLFLOW_TRACKING_URI"]
run_id = os.environ["MLFLOW_RUN_ID"]

def status(headers):
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/runs/get?run_id={run_id}", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return [answer.status, json.load(answer)["run"]["info"]["run_id"]]
    except urllib.error.HTTPError as exc:
        return [exc.code, json.load(exc).get("message")]

token = os.environ["MLFLOW_TRACKING_TOKEN"]
print("RESULT=" + json.dumps({
    "url": url,
    "no_token": status({}),
    "wrong_token": status({"Authorization": "Bearer " + "x" * len(token)}),
    "rebound_host": status({"Authorization": "Bearer " + token, "Host": "evil.example"}),
    "own_token": status({"Authorization": "Bearer " + token}),
}))
"""


def _result(output: str) -> Any:
    line = next(line for line in output.splitlines() if line.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


def _project(root: Path, script: str) -> Path:
    (root / "probe.py").parent.mkdir(parents=True, exist_ok=True)
    (root / "probe.py").write_text(script)
    return write_project(
        root,
        {
            "MLproject": f"""
                name: probe
                entry_points:
                  main:
                    command: "{sys.executable} probe.py"
            """
        },
    )


def test_the_api_takes_only_the_runs_own_token_and_stops_with_the_run(tmp_path: Path) -> None:
    done = run_cli("run", str(_project(tmp_path / "p", PROBE)), "--env-manager", "local",
                   "--mlflow-api")  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = _result(done.stdout)
    assert seen["url"].startswith("http://127.0.0.1:")
    assert seen["no_token"] == [401, "a valid token is required (Authorization: Bearer ...)"]
    assert seen["wrong_token"][0] == 401
    assert seen["rebound_host"] == [403, "the Host header names a host this server refuses"]
    run_id = done.stderr.split("run ", 1)[1].split(" ", 1)[0]
    assert seen["own_token"] == [200, run_id]
    port = int(seen["url"].rsplit(":", 1)[1])
    with socket.socket() as probe:  # the run has ended: nothing listens there any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    record = open_store().get_run(run_id)
    assert "MLFLOW_TRACKING_TOKEN" not in json.dumps(record.to_dict())


def test_runs_without_mlflow_get_no_api_and_import_no_server(tmp_path: Path) -> None:
    script = "import json, os; print('RESULT=' + json.dumps(sorted(k for k in os.environ " \
        "if k.startswith('MLFLOW_'))))\n"  # fmt: skip
    project = _project(tmp_path / "p", script)
    done = run_cli("run", str(project), "--env-manager", "local")
    assert done.returncode == 0, done.stderr
    assert _result(done.stdout) == []
    timed = run_cli(
        "run", str(project), "--env-manager", "local", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert timed.returncode == 0, timed.stderr
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if "|" in line
    ]
    assert "runner.execution.mlflow_api" in imported  # the check ran...
    loaded = {name.split(".")[0] for name in imported} | set(imported)
    assert not loaded & {"uvicorn", "starlette", "runner.server", "runner.server.mlflow"}


LOGGER = """
import json, os, urllib.request
body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "detached", "value": 1.5,
                   "timestamp": 1700000000000, "step": 3}).encode()
request = urllib.request.Request(
    os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=body,
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"],
             "Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10).read()
"""


def test_a_detached_run_is_served_by_its_supervisor(tmp_path: Path) -> None:
    from runner.api import Run

    project = _project(tmp_path / "p", LOGGER)
    done = run_cli("run", str(project), "--env-manager", "local", "--mlflow-api", "--detach")
    assert done.returncode == 0, done.stderr
    run = Run(done.stdout.strip())
    assert run.wait(timeout=120) is True
    store = open_store()
    assert [tuple(p) for p in store.metric_history(run.run_id, "detached")] == [
        (3, 1700000000000, 1.5)
    ]
