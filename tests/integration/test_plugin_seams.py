"""A new environment manager and a new backend are each one module plus one entry point.

Both toys are installed from a temporary distribution, the way a third-party package would be,
and a project runs through both: attached, detached, cancelled through the backend after its
runner died, and reconciled to its real end. The toy backend's jobs outlive their runner, as a
cluster's do, so these tests also show the attach/reconcile members at work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import RUNNER, record, records, run_cli, write_project
from tests.plugins import REPO, pythonpath, write_dist_info

TOY_BACKEND = "tests.plugins.toy_backend:ToyBackend"
TOY_MANAGER = "tests.plugins.toy_manager:ToyManager"


@pytest.fixture
def toys(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment that makes both toys visible to runner (and to its supervisor)."""
    site, state = tmp_path / "site", tmp_path / "toy-state"
    state.mkdir()
    write_dist_info(
        site,
        "toy-plugins",
        {"runner.env_managers": {"toy": TOY_MANAGER}, "runner.backends": {"toy": TOY_BACKEND}},
    )
    yield {"PYTHONPATH": pythonpath(site, REPO), "TOY_BACKEND_STATE": str(state)}
    for pid_file in state.glob("*/pid"):  # jobs outlive runners by design: end them here
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def _project(root: Path) -> Path:
    # toy-tool exists only in the toy env's bin/; the job then waits for the test's go-ahead
    command = "toy-tool; echo started; while [ ! -e {flag} ]; do sleep 0.05; done; echo done"
    return write_project(
        root,
        {
            "MLproject": f"""
                entry_points:
                  main:
                    parameters: {{flag: string}}
                    command: "{command}"
            """
        },
    )


def _supervisor_pid(run_id: str) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"runner.execution.supervisor" in argv and run_id.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no supervisor process for run {run_id}")


def _wait_for(predicate: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _detached_then_orphaned(tmp_path: Path, toys: dict[str, str]) -> tuple[str, Path, Path]:
    """A detached toy run whose supervisor is SIGKILLed while its job runs on."""
    flag = tmp_path / "go"
    args = ["run", str(_project(tmp_path / "p")), "--env-manager", "toy", "-b", "toy"]
    result = run_cli(*args, "-P", f"flag={flag}", "--detach", env=toys)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    job = Path(toys["TOY_BACKEND_STATE"]) / run_id
    output = job / "output"
    _wait_for(lambda: output.exists() and b"started" in output.read_bytes(), "the job to start")
    os.kill(_supervisor_pid(run_id), signal.SIGKILL)
    return run_id, job, flag


def _show(run_id: str, toys: dict[str, str]) -> dict[str, object]:
    """The run's record, seen by a process that has the toys installed."""
    result = run_cli("runs", "show", run_id, "--json", env=toys)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _group_members(pgid: int) -> list[int]:
    """Processes of a process group that still run (zombies awaiting a reaper do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _reconcile_calls(toys: dict[str, str]) -> list[list[str]]:
    log = Path(toys["TOY_BACKEND_STATE"]) / "reconcile.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_project_runs_through_a_plugin_manager_and_backend(
    tmp_path: Path, toys: dict[str, str]
) -> None:
    flag = tmp_path / "go"
    flag.touch()
    args = ["run", str(_project(tmp_path / "p")), "--env-manager", "toy", "-b", "toy"]
    result = run_cli(*args, "-P", f"flag={flag}", env=toys)
    assert result.returncode == 0, result.stderr
    assert "toy says hello from" in result.stdout and "done" in result.stdout
    [rec] = records()
    assert (rec["status"], rec["backend"], rec["environment"]["manager"]) == (
        "FINISHED",
        "toy",
        "toy",
    )


def test_a_job_that_outlives_its_runner_is_reattached_and_ends_with_its_real_status(
    tmp_path: Path, toys: dict[str, str]
) -> None:
    run_id, _job, flag = _detached_then_orphaned(tmp_path, toys)
    assert _show(run_id, toys)["status"] == "RUNNING"  # the backend says it still runs
    flag.touch()
    # the job finishes on its own; the next look records its real end
    _wait_for(lambda: (Path(toys["TOY_BACKEND_STATE"]) / run_id / "exit").exists(), "the job")
    rec = _show(run_id, toys)
    assert (rec["status"], rec["exit_code"]) == ("FINISHED", 0)
    logs = run_cli("runs", "logs", run_id, env=toys)  # the backend's full copy was kept
    assert "started" in logs.stdout and "done" in logs.stdout


def test_logs_follow_a_released_run_from_its_backend(tmp_path: Path, toys: dict[str, str]) -> None:
    run_id, _job, flag = _detached_then_orphaned(tmp_path, toys)
    assert _show(run_id, toys)["status"] == "RUNNING"
    follower = subprocess.Popen(
        [*RUNNER, "runs", "logs", run_id, "--follow"],
        env={**os.environ, **toys},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    assert follower.stdout.readline().startswith("toy says hello")  # streamed while it runs
    flag.touch()
    rest = follower.stdout.read()  # to the end of the stream: the run has ended
    assert follower.wait(timeout=60) == 0 and "started" in rest and "done" in rest
    assert record(run_id)["status"] == "FINISHED"


def test_a_released_run_is_cancelled_through_its_backend(
    tmp_path: Path, toys: dict[str, str]
) -> None:
    run_id, job, _flag = _detached_then_orphaned(tmp_path, toys)
    pid = int((job / "pid").read_text())
    result = run_cli("runs", "cancel", run_id, env=toys)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"run {run_id}: KILLED"
    assert _group_members(pid) == []  # the job's whole process group is gone
    assert record(run_id)["failure_reason"] == "cancelled"


def test_the_backend_is_asked_once_per_interval_in_one_batch(
    tmp_path: Path, toys: dict[str, str]
) -> None:
    first, _, _ = _detached_then_orphaned(tmp_path / "a", toys)
    second, _, _ = _detached_then_orphaned(tmp_path / "b", toys)
    assert run_cli("runs", "list", env=toys).returncode == 0  # hands the second over too
    calls_before = len(_reconcile_calls(toys))
    for _ in range(5):
        assert run_cli("runs", "list", env=toys).returncode == 0
    assert _reconcile_calls(toys)[calls_before:] == []  # the interval has not passed
    assert _show(first, toys)["status"] == "RUNNING"  # looking at a run asks its backend now...
    assert [set(batch) for batch in _reconcile_calls(toys)[calls_before:]] == [{first, second}]
    for run_id in (first, second):  # ...about all its released runs, in one batch
        run_cli("runs", "cancel", run_id, env=toys)
