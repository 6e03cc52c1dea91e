"""Docker runs end to end through `runner run`: records, reuse, SIGTERM and a SIGKILLed runner."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from backends.docker.build import LABEL_RUN_ID
from tests.docker_images import PROJECT_PREFIX
from tests.helpers import ARGV_PROBE, records, run_cli, spawn_cli, write_project

pytestmark = pytest.mark.docker


def _project(tmp_path: Path, image: str, command: str) -> Path:
    return write_project(
        tmp_path / "proj",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-cli
                docker_env:
                  image: {image}
                  environment: [["GREETING", "hi there"]]
                entry_points:
                  main:
                    parameters: {{name: string}}
                    command: "{command}"
            """,
            "probe.py": ARGV_PROBE + "import os; print('GREETING=' + os.environ['GREETING'])\n",
        },
    )


def _containers(client: Any, run_id: str) -> list[dict[str, Any]]:
    # one API call: the SDK's containers.list() inspects each container afterwards and fails
    # with 404 when one is removed in between
    label = f"{LABEL_RUN_ID}={run_id}"
    return list(client.api.containers(all=True, filters={"label": label}))


def _running(client: Any, run_id: str) -> bool:
    return any(c["State"] == "running" for c in _containers(client, run_id))


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_docker_project_runs_and_reruns_without_building(
    tmp_path: Path, python_image: str, docker_client: Any
) -> None:
    proj = _project(tmp_path, python_image, "python probe.py {name}")
    first = run_cli("run", str(proj), "-P", "name=a b; c", "-q")
    assert first.returncode == 0, first.stderr
    assert 'ARGV=["a b; c"]' in first.stdout
    assert "GREETING=hi there" in first.stdout
    second = run_cli("run", str(proj), "-P", "name=again", "-q")
    assert second.returncode == 0, second.stderr
    newest, oldest = records()
    assert newest["backend"] == oldest["backend"] == "docker"
    assert newest["environment"]["image_built"] == "none"
    assert newest["environment"]["image_id"] == oldest["environment"]["image_id"]
    assert newest["environment"]["image_id"].startswith("sha256:")
    assert _containers(docker_client, newest["run_id"]) == []


def test_exit_code_of_the_container_is_recorded(tmp_path: Path, python_image: str) -> None:
    proj = _project(tmp_path, python_image, "exit 3")
    result = run_cli("run", str(proj), "-P", "name=x")
    assert result.returncode == 1
    [rec] = records()
    assert (rec["status"], rec["exit_code"]) == ("FAILED", 3)


def test_local_backend_is_refused_for_docker_projects(tmp_path: Path) -> None:
    proj = _project(tmp_path, "img", "true")
    result = run_cli("run", str(proj), "-b", "local", "-P", "name=x")
    assert result.returncode == 1
    assert "it runs on a container backend, not 'local'" in result.stderr
    assert records() == []


def _start_a_long_run(tmp_path: Path, image: str, client: Any) -> tuple[Any, str]:
    """A `runner run` whose container is running `sleep 600`: (runner process, run id)."""
    proj = _project(tmp_path, image, "sleep 600")
    runner = spawn_cli("run", str(proj), "-P", "name=x")
    _wait_for(lambda: bool(records("RUNNING")))
    run_id = records()[0]["run_id"]
    _wait_for(lambda: _running(client, run_id))
    return runner, run_id


def test_sigterm_to_the_runner_stops_the_container(
    tmp_path: Path, python_image: str, docker_client: Any
) -> None:
    runner, run_id = _start_a_long_run(tmp_path, python_image, docker_client)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 1, err
    rec = records()[0]
    assert rec["status"] == "KILLED", err
    assert _containers(docker_client, run_id) == [], (err, rec["failure_reason"])


def test_a_sigkilled_runner_has_its_container_reconciled(
    tmp_path: Path, python_image: str, docker_client: Any
) -> None:
    runner, run_id = _start_a_long_run(tmp_path, python_image, docker_client)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    [rec] = records()  # reconciles
    assert rec["status"] == "FAILED"
    assert "runner_lost" in rec["failure_reason"]
    _wait_for(lambda: _containers(docker_client, run_id) == [])


def test_record_lists_the_image(tmp_path: Path, python_image: str) -> None:
    proj = _project(tmp_path, python_image, "true")
    assert run_cli("run", str(proj), "-P", "name=x").returncode == 0
    shown = json.loads(run_cli("runs", "show", records()[0]["run_id"], "--json").stdout)
    assert shown["environment"]["base_image"] == python_image


def test_unreachable_daemon_refuses_before_a_run_exists(tmp_path: Path) -> None:
    proj = _project(tmp_path, "img", "true")
    result = run_cli(
        "run", str(proj), "-P", "name=x", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    assert result.returncode == 1
    assert "cannot reach the Docker daemon at unix:///nonexistent/docker.sock" in result.stderr
    assert records() == []


def test_missing_host_variable_refuses_before_a_run_exists(tmp_path: Path) -> None:
    proj = write_project(
        tmp_path / "p",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-env
                docker_env:
                  image: img
                  environment: ["RUNNER_TEST_SURELY_UNSET"]
                entry_points:
                  main: {{command: "true"}}
            """
        },
    )
    result = run_cli("run", str(proj))
    assert result.returncode == 1
    assert "RUNNER_TEST_SURELY_UNSET was not set" in result.stderr
    assert records() == []


def test_python_env_project_in_a_container(
    tmp_path: Path, python_image: str, runner_home: Path
) -> None:
    proj = write_project(
        tmp_path / "py",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-py
                python_env: python_env.yaml
                entry_points:
                  main: {{command: "python -c 'import six; print(six.__version__)'"}}
            """,
            "python_env.yaml": "python: '3.11'\ndependencies: ['six==1.16.0']\n",
        },
    )
    config = json.dumps({"base_image": python_image})
    result = run_cli("run", str(proj), "-b", "docker", "-c", config, "-q")
    assert result.returncode == 0, result.stderr
    assert "1.16.0" in result.stdout
    [rec] = records()
    assert rec["backend"] == "docker"
    assert rec["environment"]["manager"] == "uv"
    assert "six==1.16.0" in rec["environment"]["packages"]
    # locked on the host, installed only in the image: no local venv was built
    assert "prefix" not in rec["environment"]
    built = [p for p in (runner_home / "envs").glob("uv/*") if not p.name.startswith(".")]
    assert built == []


def test_path_parameters_reach_the_container(tmp_path: Path, python_image: str) -> None:
    data = tmp_path / "inputs" / "data.txt"
    data.parent.mkdir()
    data.write_text("rows from the host\n")
    proj = write_project(
        tmp_path / "pp",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-paths
                docker_env: {{image: {python_image}}}
                entry_points:
                  main:
                    parameters: {{data: path}}
                    command: "cat {{data}}; (echo more >> {{data}}) 2>/dev/null || echo read-only"
            """
        },
    )
    result = run_cli("run", str(proj), "-P", f"data={data}", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "rows from the host\nread-only\n"
    assert records()[0]["parameters"]["data"] == str(data)
    assert data.read_text() == "rows from the host\n"


def test_detach_returns_once_the_container_exists(
    tmp_path: Path, python_image: str, docker_client: Any
) -> None:
    proj = _project(tmp_path, python_image, "echo started; sleep 60")
    result = run_cli("run", str(proj), "-P", "name=x", "--detach")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert _containers(docker_client, run_id) != []  # created before the CLI returned
    assert records()[0]["status"] == "RUNNING"
    assert run_cli("runs", "cancel", run_id).returncode == 0
    _wait_for(lambda: _containers(docker_client, run_id) == [])


def test_detach_of_a_project_whose_image_fails_to_build_says_so(
    tmp_path: Path, busybox_image: str
) -> None:
    mlproject = f"""
        name: {PROJECT_PREFIX}-broken
        docker_env: {{image: {PROJECT_PREFIX}-broken, build: {{}}}}
        entry_points:
          main: {{command: "true"}}
    """
    dockerfile = f"FROM {busybox_image}\nRUN exit 3\n"
    proj = write_project(tmp_path / "broken", {"MLproject": mlproject, "Dockerfile": dockerfile})
    result = run_cli("run", str(proj), "--detach")
    assert result.returncode == 1 and result.stdout == ""
    [rec] = records()
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert error.startswith(f"error: run {rec['run_id']} FAILED before it was launched: building")
    assert error.endswith("failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3")
    assert rec["status"] == "FAILED"
