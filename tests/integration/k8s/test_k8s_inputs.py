"""runs:/ inputs of a Kubernetes run: the pod fetches the artifact from the tracking server.

A producer run, recorded through a live `runner server` (its own RUNNER_HOME, reached at this
host's non-loopback address as pods reach it), logs a file and a folder; a `-b kubernetes` run
given `runs:/<id>/...` reads them in its pod at the path its command names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run_cli, write_project
from tests.k8s_emulator import Emulator
from tests.live_server import free_port, server_process

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOKEN = "k8s-inputs-token"
PRODUCE = """
from pathlib import Path
import runner_tracking as t

Path("model.txt").write_text("weights v1\\n")
Path("data/sub").mkdir(parents=True, exist_ok=True)
Path("data/a.csv").write_text("1,2\\n")
Path("data/sub/b.csv").write_text("3,4\\n")
t.log_artifact("model.txt")
t.log_artifact("data")
"""
READ = """
import sys
from pathlib import Path
given = Path(sys.argv[1])
files = [given] if given.is_file() else sorted(p for p in given.rglob("*") if p.is_file())
for path in files:
    print(f"READ {path.relative_to(given.parent)} {path.read_text()!r}", flush=True)
"""


@dataclass(frozen=True)
class Server:
    url: str
    home: Path  # the server's own RUNNER_HOME: its database and artifacts
    env: dict[str, str]  # a client recording through it


@pytest.fixture
def server(tmp_path: Path, host_address: str) -> Iterator[Server]:
    port, home = free_port(), tmp_path / "server-home"
    url = f"http://{host_address}:{port}"
    args = ("--host", "0.0.0.0", "--token", TOKEN, "--allowed-host", host_address)
    with server_process(port, env={"RUNNER_HOME": str(home)}, args=args, token=TOKEN):
        yield Server(url, home, {"RUNNER_TRACKING_URI": url, "RUNNER_TRACKING_TOKEN": TOKEN})


@pytest.fixture
def reader(tmp_path: Path, python_image: str) -> Path:
    mlproject = f"""
        name: k8s-inputs
        docker_env: {{image: {python_image}}}
        entry_points:
          main:
            parameters: {{data: path}}
            command: "python read.py {{data}}"
    """
    return write_project(tmp_path / "reader", {"MLproject": mlproject, "read.py": READ})


def produced(tmp_path: Path, env: dict[str, str]) -> str:
    """The id of a local run of the producer, recorded in the store ``env`` names."""
    proj = write_project(
        tmp_path / "producer",
        {
            "MLproject": "entry_points:\n  main: {command: python produce.py}\n",
            "produce.py": PRODUCE,
        },
    )
    ran = run_cli("run", str(proj), env=env, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return _runs(env)[0]["run_id"]


def _runs(env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run_cli("runs", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def _on_k8s(reader: Path, cfg: Path, env: dict[str, str], *args: str) -> Any:
    return run_cli(
        "run", str(reader), "-b", "kubernetes", "-c", str(cfg), *args, env=env, timeout=900
    )


def test_a_file_and_a_folder_of_a_run_on_the_server_are_read_in_the_pod(
    tmp_path: Path,
    server: Server,
    reader: Path,
    config: Callable[..., Path],
    emulator: Emulator,
) -> None:
    producer = produced(tmp_path, server.env)
    cfg = config(**{"tracking-uri": server.url})

    shown = _on_k8s(
        reader, cfg, server.env, "-P", f"data=runs:/{producer[:8]}/model.txt", "--dry-run"
    )
    assert shown.returncode == 0, shown.stderr
    (job,) = yaml.safe_load_all(shown.stdout)
    container = job["spec"]["template"]["spec"]["containers"][0]
    inputs = json.loads(next(e["value"] for e in container["env"] if e["name"] == "RUNNER_INPUTS"))
    ((copy, origin),) = inputs.items()
    assert origin == f"runs:/{producer}/model.txt"  # the full run id, not the prefix typed
    assert container["command"][-1] == f"python read.py {copy}"
    assert emulator.requests == []

    for given, expected in [
        ("model.txt", ["READ model.txt 'weights v1\\n'"]),
        ("data", ["READ data/a.csv '1,2\\n'", "READ data/sub/b.csv '3,4\\n'"]),
    ]:
        ran = _on_k8s(reader, cfg, server.env, "-P", f"data=runs:/{producer}/{given}")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert [line for line in ran.stdout.splitlines() if line.startswith("READ ")] == expected
        assert f"runner: fetched runs:/{producer}/{given} to /" in ran.stdout + ran.stderr
    consumers = [r for r in _runs(server.env) if r["run_id"] != producer]
    assert [r["status"] for r in consumers] == ["FINISHED", "FINISHED"]


def test_an_artifact_the_server_does_not_have_fails_the_run_in_the_pod(
    tmp_path: Path,
    server: Server,
    reader: Path,
    config: Callable[..., Path],
    emulator: Emulator,
) -> None:
    """The runner's store is the server's database, not the server: the producer's files stay
    in this RUNNER_HOME, so the runner copies them here but the pod finds nothing."""
    database = {"RUNNER_TRACKING_URI": f"sqlite:///{server.home / 'runner.db'}"}
    producer = produced(tmp_path, database)
    cfg = config(**{"tracking-uri": server.url})
    ran = _on_k8s(
        reader,
        cfg,
        {**database, "RUNNER_TRACKING_TOKEN": TOKEN},
        "-P",
        f"data=runs:/{producer}/model.txt",
    )
    assert ran.returncode == 1
    output = ran.stdout + ran.stderr
    assert (
        f"runner: cannot fetch the input runs:/{producer}/model.txt to /" in output
        and f"run {producer} has no artifact 'model.txt' on the tracking server {server.url}"
        in output
    )
    assert "READ " not in output  # the command never ran
    (consumer,) = [r for r in _runs(database) if r["run_id"] != producer]
    assert consumer["status"] == "FAILED"
    assert consumer["exit_code"] == 1  # the fetch's, in the pod
    assert consumer["failure_reason"].startswith("BackoffLimitExceeded")


def test_a_schedule_with_a_runs_input_is_refused_before_an_image_is_built(
    tmp_path: Path,
    server: Server,
    reader: Path,
    config: Callable[..., Path],
    emulator: Emulator,
) -> None:
    producer = produced(tmp_path, server.env)
    cfg = config(**{"tracking-uri": server.url})
    created = run_cli(
        "schedule", "create", "nightly", "--cron", "0 3 * * *", str(reader),
        "-P", f"data=runs:/{producer}/model.txt", "-c", str(cfg), env=server.env, timeout=300,
    )  # fmt: skip
    assert created.returncode == 1
    assert (
        f"kubernetes schedules take no runs:/ inputs (runs:/{producer}/model.txt): only a "
        "single run fetches them in its pod" in created.stderr
    )
    assert not any(r.method == "POST" for r in emulator.requests)
