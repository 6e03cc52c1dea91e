"""End to end through the real CLI: records for FINISHED, FAILED, KILLED, lost runners, errors."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import (
    ARGV_PROBE,
    record,
    records,
    run_cli,
    spawn_cli,
    write_project,
)

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "sample_projects" / "hello"


def _project(
    tmp_path: Path, command: str, params: str = "", extra: dict[str, str] | None = None
) -> Path:
    mlproject = f"""
        name: t
        entry_points:
          main:
            {params}
            command: "{command}"
    """
    return write_project(tmp_path / "proj", {"MLproject": mlproject, **(extra or {})})


def _wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_hello_finishes_and_is_recorded() -> None:
    result = run_cli("run", str(HELLO), "-P", "name=world")
    assert result.returncode == 0, result.stderr
    assert "Hello, world!" in result.stdout
    [rec] = records()
    assert rec["status"] == "FINISHED"
    assert rec["exit_code"] == 0
    assert rec["parameters"] == {"name": "world", "excitement": "1.0"}
    assert rec["entry_point"] == "main"
    assert rec["backend"] == "local"
    assert rec["environment"]["manager"] == "local"
    assert rec["command"] == "python hello.py --name world --excitement 1.0"
    assert rec["source"]["commit"] is None or len(rec["source"]["commit"]) == 40
    assert rec["start_time"] and rec["end_time"]
    assert rec["metrics"] == {"greeting_length": 6.0}
    assert f"(run {rec['run_id']})" in result.stdout


def test_run_record_matches_its_schema() -> None:
    assert run_cli("run", str(HELLO), "-q").returncode == 0
    schema = json.loads((REPO / "schemas" / "run.schema.json").read_text())
    for rec in records():
        jsonschema.validate(rec, schema)


def test_output_is_kept_as_a_log_artifact() -> None:
    assert run_cli("run", str(HELLO), "-P", "name=log me").returncode == 0
    [rec] = records()
    logs = run_cli("runs", "logs", rec["run_id"][:8])
    assert logs.returncode == 0
    assert "Hello, log me!" in logs.stdout


def test_failing_entry_point_is_failed_with_exit_code(tmp_path: Path) -> None:
    proj = _project(tmp_path, "python -c 'import sys; sys.exit(3)'")
    result = run_cli("run", str(proj))
    assert result.returncode == 1
    [rec] = records()
    assert rec["status"] == "FAILED"
    assert rec["exit_code"] == 3
    assert rec["failure_reason"] == "entry point exited with code 3"
    assert f"run {rec['run_id']} FAILED" in result.stderr


def test_values_and_extra_keys_arrive_as_single_literal_argv_elements(tmp_path: Path) -> None:
    proj = _project(
        tmp_path, "python probe.py {name}", "parameters: {name: string}", {"probe.py": ARGV_PROBE}
    )
    hostile = ["x; touch pwned", "$(touch pwned)", "`touch pwned`", "a\nb", 'it\'s "q"']
    for value in hostile:
        result = run_cli("run", str(proj), "-P", f"name={value}", "-P", "extra=--flag x", "-q")
        assert result.returncode == 0, result.stderr
        argv = json.loads(result.stdout.split("ARGV=", 1)[1].splitlines()[0])
        assert argv == [value, "--extra", "--flag x"]
    assert not (proj / "pwned").exists()
    assert not Path("pwned").exists()
    assert {r["parameters"]["name"] for r in records()} == set(hostile)


def test_validation_error_creates_no_run() -> None:
    result = run_cli("run", str(HELLO), "-P", "excitement=abc")
    assert result.returncode == 1
    assert "parameter 'excitement': expected float, got 'abc'" in result.stderr
    assert "Traceback" not in result.stderr
    assert records() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-P", "alpha"], "Invalid format for -P parameter: 'alpha'. Use -P name=value."),
        (["-P", "a=1", "-P", "a=2"], "Repeated parameter: 'a'"),
    ],
)
def test_param_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_cli("run", str(HELLO), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert records() == []


def test_unknown_backend_lists_the_available_ones() -> None:
    result = run_cli("run", str(HELLO), "-b", "nope")
    assert result.returncode == 1
    assert "unknown backend 'nope'; available backends:" in result.stderr
    assert "local" in result.stderr
    assert records() == []


def test_version_on_a_plain_folder_is_refused(tmp_path: Path) -> None:
    proj = _project(tmp_path, "true")
    result = run_cli("run", str(proj), "-v", "main")
    assert result.returncode == 1
    assert "Setting a version is only supported for Git project URIs" in result.stderr


def test_sigterm_to_the_runner_kills_the_run_and_its_children(tmp_path: Path) -> None:
    marker = _unique_seconds()
    proj = _project(tmp_path, f"sleep {marker} & sleep {marker}; wait")
    runner = spawn_cli("run", str(proj))
    _wait_for(lambda: bool(records("RUNNING")) and _sleepers(marker) == 2)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 1
    [rec] = records()
    assert rec["status"] == "KILLED"
    _wait_for(lambda: _sleepers(marker) == 0, timeout=15)


def test_a_sigkilled_runner_is_marked_failed_by_the_next_command(tmp_path: Path) -> None:
    marker = _unique_seconds()
    proj = _project(tmp_path, f"sleep {marker}")
    runner = spawn_cli("run", str(proj))
    _wait_for(lambda: bool(records("RUNNING")))
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    [rec] = records()  # this command reconciles
    assert rec["status"] == "FAILED"
    assert "died (runner_lost)" in rec["failure_reason"]
    _wait_for(lambda: _sleepers(marker) == 0, timeout=15)


def test_eight_concurrent_runs_on_one_fresh_store() -> None:
    procs = [spawn_cli("run", str(HELLO), "-P", f"name=n{i}", "-q") for i in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    recs = records()
    assert len(recs) == 8
    assert {r["status"] for r in recs} == {"FINISHED"}
    assert {r["parameters"]["name"] for r in recs} == {f"n{i}" for i in range(8)}


def test_detached_run_can_be_followed() -> None:
    result = run_cli("run", str(HELLO), "--detach", "-P", "name=later")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    logs = run_cli("runs", "logs", run_id, "--follow")
    assert "Hello, later!" in logs.stdout
    assert record(run_id)["status"] == "FINISHED"


def test_cancel_a_detached_run(tmp_path: Path) -> None:
    marker = _unique_seconds()
    proj = _project(tmp_path, f"sleep {marker}")
    run_id = run_cli("run", str(proj), "--detach").stdout.strip()
    _wait_for(lambda: record(run_id)["status"] == "RUNNING" and _sleepers(marker) == 1)
    result = run_cli("runs", "cancel", run_id)
    assert result.returncode == 0, result.stderr
    assert "KILLED" in result.stdout
    assert record(run_id)["status"] == "KILLED"
    _wait_for(lambda: _sleepers(marker) == 0, timeout=15)


def test_script_entry_point_without_mlproject(tmp_path: Path) -> None:
    proj = write_project(tmp_path / "scripts", {"train.py": ARGV_PROBE})
    result = run_cli("run", str(proj), "-e", "train.py", "-P", "lr=0.1", "-P", "b=x y", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.split("ARGV=")[1]) == ["--lr", "0.1", "--b", "x y"]


def test_runner_version_and_help() -> None:
    assert run_cli("--version").stdout.strip() == "runner, version 0.1.0"
    help_text = run_cli("run", "--help").stdout
    assert "--env-manager" in help_text and "Exit status" in help_text


def test_show_unknown_run_is_a_clear_error() -> None:
    result = run_cli("runs", "show", "deadbeefdead")
    assert result.returncode == 1
    assert "run 'deadbeefdead' not found" in result.stderr


def _unique_seconds() -> str:
    """A sleep duration no other process on the machine is likely to use, to find ours."""
    return f"{random.randint(10**6, 10**7)}.{os.getpid()}"


def _sleepers(marker: str) -> int:
    pattern = "^sleep " + marker.replace(".", "[.]") + "$"
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return len(out.stdout.split())


def test_runner_env_vars_reach_the_entry_point(tmp_path: Path) -> None:
    probe = (
        "import os; e = os.environ\n"
        "print('ENV=' + e['RUNNER_RUN_ID'] + '|' + e['RUNNER_EXPERIMENT'])\n"
    )
    proj = _project(tmp_path, "python env.py", extra={"env.py": probe})
    result = run_cli("run", str(proj), "--experiment-name", "exp1", "-q")
    assert result.returncode == 0, result.stderr
    [rec] = records()
    assert f"ENV={rec['run_id']}|exp1" in result.stdout
    assert rec["experiment"] == "exp1"
    assert os.environ.get("RUNNER_RUN_ID") is None
