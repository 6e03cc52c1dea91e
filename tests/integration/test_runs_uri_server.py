"""runs:/ inputs of `runner run` fetched from a real tracking server: files, folders, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from runner.execution.ingest import tracking_pythonpath
from runner.server.app import Settings
from tests.helpers import run_cli, write_project
from tests.live_server import serving

TOKEN = "runs-fetch-token"
BIG = 3 * 1024 * 1024 + 7  # more than one download chunk, and not a multiple of one
LOG_ARTIFACTS = """
import sys, runner_tracking as t
t.log_artifact(sys.argv[1])                # a file: model.txt
t.log_artifact(sys.argv[2])                # a folder: dataset/ with every file in it
t.log_artifact(sys.argv[3], "weights")     # a large file, streamed both ways
"""
READ_INPUT = """
import json, sys
from pathlib import Path
given = Path(sys.argv[1])
if given.is_file():
    files = {given.name: given.read_bytes().hex()}
else:
    found = sorted(p for p in given.rglob("*") if p.is_file())
    files = {p.relative_to(given).as_posix(): p.read_bytes().hex() for p in found}
print("INPUT=" + json.dumps({"path": str(given), "name": given.name, "files": files}))
"""


@dataclass(frozen=True)
class Server:
    url: str
    artifacts: Path  # the server's artifact root, never this test's RUNNER_HOME
    env: dict[str, str]  # what a client of it needs


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = Settings(
        store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifact_root=str(tmp_path / "server-artifacts"),
        token=TOKEN,
    )
    with serving(settings) as url:
        env = {"RUNNER_TRACKING_URI": url, "RUNNER_TRACKING_TOKEN": TOKEN}
        yield Server(url, tmp_path / "server-artifacts", env)


def logged_run(server: Server, tmp_path: Path) -> str:
    """A run whose entry point logged model.txt, dataset/ and weights/big.bin over HTTP,
    as one on another machine does: its files are on the server only."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    made = requests.post(
        f"{server.url}/api/runs", json={"experiment": "e"}, headers=headers, timeout=30
    )
    assert made.status_code == 201, made.text
    run_id = str(made.json()["run_id"])
    sources = tmp_path / "logged"
    write_project(sources, {"model.txt": "weights v1\n", "dataset/a.csv": "1,2\n"})
    write_project(sources, {"dataset/sub/b.csv": "3,4\n", "dataset/sub/deeper/c.txt": "c"})
    (sources / "big.bin").write_bytes(os.urandom(BIG))
    argv = [sources / "model.txt", sources / "dataset", sources / "big.bin"]
    env = {
        **os.environ,
        **server.env,
        "PYTHONPATH": tracking_pythonpath(),
        "RUNNER_RUN_ID": run_id,
        "RUNNER_TRACKING_TRANSPORT": "http",
    }
    script = [sys.executable, "-c", LOG_ARTIFACTS, *map(str, argv)]
    logged = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert logged.returncode == 0 and logged.stderr == "", logged.stderr
    return run_id


def reader(tmp_path: Path) -> Path:
    mlproject = """
        entry_points:
          main:
            parameters: {data: path}
            command: "python read.py {data}"
    """
    return write_project(tmp_path / "reader", {"MLproject": mlproject, "read.py": READ_INPUT})


def read_input(server: Server, project: Path, uri: str) -> dict[str, object]:
    ran = run_cli("run", str(project), "-P", f"data={uri}", env=server.env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    line = next(line for line in ran.stdout.splitlines() if line.startswith("INPUT="))
    seen: dict[str, object] = json.loads(line[len("INPUT=") :])
    assert not Path(str(seen["path"])).exists()  # the private copy went with its run
    return seen


def hexed(*pairs: tuple[str, str]) -> dict[str, str]:
    return {name: text.encode().hex() for name, text in pairs}


def test_a_file_and_a_folder_on_the_server_arrive_as_local_copies(
    server: Server, tmp_path: Path, runner_home: Path
) -> None:
    run_id = logged_run(server, tmp_path)
    assert not (runner_home / "artifacts" / run_id).exists()  # nothing of it is local
    project = reader(tmp_path)
    model = read_input(server, project, f"runs:/{run_id}/model.txt")
    assert model["name"] == "model.txt"
    assert model["files"] == hexed(("model.txt", "weights v1\n"))
    dataset = read_input(server, project, f"runs:/{run_id}/dataset")
    assert dataset["name"] == "dataset"
    assert dataset["files"] == hexed(
        ("a.csv", "1,2\n"), ("sub/b.csv", "3,4\n"), ("sub/deeper/c.txt", "c")
    )
    big = read_input(server, project, f"runs:/{run_id}/weights/big.bin")
    stored = server.artifacts / run_id / "files" / "weights" / "big.bin"
    assert big["files"] == {"big.bin": stored.read_bytes().hex()}


def test_a_run_id_prefix_is_expanded_by_the_server(server: Server, tmp_path: Path) -> None:
    run_id = logged_run(server, tmp_path)
    project = reader(tmp_path)
    sub = read_input(server, project, f"runs:/{run_id[:8]}/dataset/sub")
    assert sub["files"] == hexed(("b.csv", "3,4\n"), ("deeper/c.txt", "c"))
    everything = read_input(server, project, f"runs:/{run_id[:12].upper()}/.")
    assert sorted(everything["files"]) == [  # type: ignore[call-overload]
        "dataset/a.csv",
        "dataset/sub/b.csv",
        "dataset/sub/deeper/c.txt",
        "model.txt",
        "weights/big.bin",
    ]


def refusal(server: Server, project: Path, uri: str) -> str:
    temp = project.parent / "temp"  # the runner's private temp dir: what a refusal leaves
    temp.mkdir(exist_ok=True)
    ran = run_cli("run", str(project), "-P", f"data={uri}", env={**server.env, "TMPDIR": str(temp)})
    assert ran.returncode != 0, ran.stdout
    assert "INPUT=" not in ran.stdout  # the entry point never ran
    assert list(temp.glob("runner-input-*")) == []  # no half-fetched copy is left behind
    return ran.stderr


def test_a_missing_artifact_or_run_is_a_clear_parameter_error(
    server: Server, tmp_path: Path
) -> None:
    run_id = logged_run(server, tmp_path)
    project = reader(tmp_path)
    missing = refusal(server, project, f"runs:/{run_id[:8]}/dataset/nothing.csv")
    assert f"error: parameter 'data': run {run_id} has no artifact 'dataset/nothing.csv'" in missing
    assert f"its artifacts are on the tracking server {server.url}" in missing
    unknown = refusal(server, project, "runs:/ffffffff0000/model.txt")
    assert "error: parameter 'data': run 'ffffffff0000' not found" in unknown
    listed = run_cli("runs", "list", "--json", env=server.env)
    assert [run["run_id"] for run in json.loads(listed.stdout)] == [run_id]  # no run recorded


def test_paths_out_of_the_runs_artifacts_are_refused(server: Server, tmp_path: Path) -> None:
    run_id = logged_run(server, tmp_path)
    project = reader(tmp_path)
    other = server.artifacts / "other"
    write_project(other, {"secret.txt": "not an artifact of the run"})
    files = server.artifacts / run_id / "files"
    os.symlink(other / "secret.txt", files / "dataset" / "link.txt")  # listed by nobody
    os.symlink(other, files / "outside")
    dotdot = refusal(server, project, f"runs:/{run_id}/../other/secret.txt")
    assert "'runs:/" in dotdot and "is not a runs:/<run-id>/<artifact-path> URI" in dotdot
    linked = refusal(server, project, f"runs:/{run_id}/outside/secret.txt")
    assert (
        "error: parameter 'data': artifact path outside/secret.txt is refused: "
        "it leads out of the run's artifacts through a symlink"
    ) in linked
    encoded = refusal(server, project, f"runs:/{run_id}/%2e%2e/other/secret.txt")
    assert "it contains a percent-encoded sequence" in encoded
    dataset = read_input(server, project, f"runs:/{run_id}/dataset")
    assert "link.txt" not in dataset["files"]  # type: ignore[operator]


MAKE_DATASET = """
import os, tempfile
os.environ["RUNNER_TRACKING_TRANSPORT"] = "http"  # how a step on another machine logs
import runner_tracking as t
folder = os.path.join(tempfile.mkdtemp(), "dataset")
os.makedirs(os.path.join(folder, "sub"))
open(os.path.join(folder, "a.csv"), "w").write("1,2\\n")
open(os.path.join(folder, "sub", "b.csv"), "w").write("3,4\\n")
t.log_artifact(folder)
"""
WORKFLOW = """
steps:
  make: {project: make}
  use: {project: reader, needs: [make], parameters: {data: "${{ steps.make.outputs.dataset }}"}}
"""


def test_a_workflow_step_reads_an_earlier_steps_artifacts_from_the_server(
    server: Server, tmp_path: Path, runner_home: Path
) -> None:
    make = """
        entry_points:
          main: {command: "python make.py"}
    """
    write_project(tmp_path / "make", {"MLproject": make, "make.py": MAKE_DATASET})
    reader(tmp_path)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    ran = run_cli("workflow", "run", str(tmp_path / "wf.yaml"), "--json", env=server.env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary = json.loads(ran.stdout.splitlines()[-1])
    make_id = summary["steps"]["make"]["run_id"]
    assert not (runner_home / "artifacts" / make_id / "files").exists()  # on the server only
    shown = run_cli("runs", "show", summary["steps"]["use"]["run_id"], "--json", env=server.env)
    assert json.loads(shown.stdout)["parameters"] == {"data": f"runs:/{make_id}/dataset"}
    log = run_cli("runs", "logs", summary["steps"]["use"]["run_id"], env=server.env).stdout
    line = next(line for line in log.splitlines() if line.startswith("INPUT="))
    assert json.loads(line[len("INPUT=") :])["files"] == hexed(
        ("a.csv", "1,2\n"), ("sub/b.csv", "3,4\n")
    )
    again = run_cli("workflow", "run", str(tmp_path / "wf.yaml"), "--json", env=server.env)
    steps = json.loads(again.stdout.splitlines()[-1])["steps"]
    assert {step["status"] for step in steps.values()} == {"cached"}  # the copy's content keys it
    # the workflow run's file, DAG and step results reached the server: its UI draws the graph
    kept = server.artifacts / summary["run_id"]
    assert {"workflow.yaml", "dag.json", "steps.json"} <= {p.name for p in kept.iterdir()}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    page = requests.get(
        f"{server.url}/ui/workflows/{summary['run_id']}", headers=headers, timeout=30
    )
    assert page.status_code == 200 and "<svg" in page.text and make_id[:8] in page.text
