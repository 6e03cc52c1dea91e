"""`runner run --detach` returns once the backend has the run, or says why it never got it.

Real supervisors and processes on the local backend; a test environment manager whose build
waits at a gate holds a run before its launch for as long as a test needs."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import runner
from runner.errors import RunnerError
from runner.home import run_artifacts_dir
from runner.status import RunStatus
from tests.helpers import RUNNER, record, records, run_cli, write_project
from tests.plugins import REPO, pythonpath, write_dist_info
from tests.plugins.gate_manager import GATE_VARIABLE

GATE_MANAGER = "tests.plugins.gate_manager:GateManager"
MISSING_DEPENDENCY = "brokenpkg @ file:///nonexistent/brokenpkg-1.0.tar.gz"


@pytest.fixture
def gate(tmp_path: Path) -> dict[str, str]:
    """The environment that installs the gate manager; its build waits for ``GATE_FILE``."""
    site = tmp_path / "site"
    write_dist_info(site, "gate-manager", {"runner.env_managers": {"gate": GATE_MANAGER}})
    return {"PYTHONPATH": pythonpath(site, REPO), GATE_VARIABLE: str(tmp_path / "gate")}


def _project(root: Path, command: str, files: dict[str, str] | None = None) -> Path:
    mlproject = f"entry_points:\n  main: {{command: '{command}'}}\n"
    return write_project(root, {"MLproject": mlproject, **(files or {})})


def _waiting_project(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose entry point runs until the returned flag file exists."""
    flag = tmp_path / "go"
    command = f"echo started; while [ ! -e {flag} ]; do sleep 0.05; done; echo done"
    return _project(tmp_path / "p", command), flag


def _unbuildable_project(tmp_path: Path) -> Path:
    env = f"python: '3.11'\ndependencies: ['{MISSING_DEPENDENCY}']\n"
    return _project(tmp_path / "p", "echo ran", {"python_env.yaml": env})


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*RUNNER, *args],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(cli: subprocess.Popen[str], text: str) -> list[str]:
    """The CLI's stderr lines up to the one containing ``text`` (it is still waiting then)."""
    assert cli.stderr is not None
    lines: list[str] = []
    while not lines or text not in lines[-1]:
        line = cli.stderr.readline()
        assert line, f"the CLI ended before saying {text!r}: {lines}"
        lines.append(line)
    return lines


def _gated(tmp_path: Path, gate: dict[str, str]) -> tuple[subprocess.Popen[str], str, list[str]]:
    """A detaching CLI held before launch, at the gate: (the CLI, the run id, stderr so far)."""
    project = _project(tmp_path / "p", "echo through")
    cli = _spawn(["run", str(project), "--env-manager", "gate", "--detach"], gate)
    shown = _read_until(cli, "waiting for the gate")
    [rec] = records()
    return cli, str(rec["run_id"]), shown


def test_a_detached_run_returns_once_launched_with_the_run_running(tmp_path: Path) -> None:
    project, flag = _waiting_project(tmp_path)
    result = run_cli("run", str(project), "--detach")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert result.stdout == f"{run_id}\n"  # stdout is only the id, for $(runner run --detach)
    assert (run_artifacts_dir(run_id) / "launched.json").is_file()
    assert record(run_id)["status"] == "RUNNING"  # launched, not SCHEDULED-without-launch
    lines = result.stderr.splitlines()
    assert lines[-2].startswith(f"runner: run {run_id} (main) started: echo started;")
    assert lines[-1] == (
        f"runner: run {run_id} launched (local); follow it: runner runs logs {run_id} --follow"
    )
    assert "\x1b" not in result.stderr  # a pipe gets plain lines
    flag.touch()
    _wait_for(lambda: record(run_id)["status"] == "FINISHED", "the run to finish")
    assert run_cli("runs", "logs", run_id).stdout == "started\ndone\n"


def test_a_detached_run_whose_env_build_fails_reports_it_and_exits_non_zero(
    tmp_path: Path,
) -> None:
    result = run_cli("run", str(_unbuildable_project(tmp_path)), "--detach", timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("runner: resolving 1 requirements for Python 3.11")  # relayed
    at = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    found = re.fullmatch(
        r"error: run ([0-9a-f]{32}) FAILED before it was launched: cannot resolve the "
        r"dependencies of python_env\.yaml for Python 3\.11\.\d+: (.+)",
        lines[at],
    )
    assert found, lines[at]
    artifacts = run_artifacts_dir(found.group(1))
    assert lines[-1] == (  # the hint of an attached run's error, and the supervisor's log
        "hint: fix the pins in the env file; the full log is the run's env-build.log: "
        f"{artifacts / 'env-build.log'}; the supervisor's log: {artifacts / 'supervisor.log'}"
    )
    rec = record(found.group(1))
    assert rec["status"] == "FAILED"
    assert str(rec["failure_reason"]).startswith("cannot resolve the dependencies")
    assert not (artifacts / "launched.json").exists()


def test_a_supervisor_that_dies_before_launch_is_named_with_its_log(
    tmp_path: Path, gate: dict[str, str]
) -> None:
    cli, run_id, _ = _gated(tmp_path, gate)
    live = record(run_id)
    assert live["status"] == "RUNNING"
    supervisor = _supervisor_pid(run_id)
    os.kill(supervisor, signal.SIGKILL)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 1 and out == ""
    log = run_artifacts_dir(run_id) / "supervisor.log"
    assert err.splitlines()[-2:] == [
        f"error: the supervisor of run {run_id} was killed by signal 9 before it launched the run",
        f"hint: see the supervisor's log: {log}",
    ]
    rec = record(run_id)  # already settled by the CLI: its runner is gone
    assert rec["status"] == "FAILED"
    assert f"runner process {supervisor} " in str(rec["failure_reason"])


def test_ctrl_c_while_waiting_leaves_the_run_going_detached(
    tmp_path: Path, gate: dict[str, str]
) -> None:
    cli, run_id, _ = _gated(tmp_path, gate)
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130
    assert out == f"{run_id}\n"
    assert err.splitlines()[-1] == (
        f"runner: the run continues detached: runner runs cancel {run_id} stops it"
    )
    assert record(run_id)["status"] == "RUNNING"  # the ^C reached only the waiting CLI
    Path(gate[GATE_VARIABLE]).touch()
    _wait_for(lambda: record(run_id)["status"] == "FINISHED", "the run to finish")
    assert run_cli("runs", "logs", run_id).stdout == "through\n"


def test_progress_while_waiting_is_live_on_a_terminal(tmp_path: Path, gate: dict[str, str]) -> None:
    project = _project(tmp_path / "p", "echo through")
    code, screen = _detach_on_a_terminal(
        ["run", str(project), "--env-manager", "gate", "--detach"], gate
    )
    assert code == 0, screen
    # the supervisor's step is drawn in place with its elapsed time, then kept with its duration
    assert re.search(r"\r\x1b\[Krunner: waiting for the gate \d+\.\ds", screen), screen
    assert re.search(r"\r\x1b\[Krunner: waiting for the gate \(\d+\.\ds\)\r\n", screen), screen
    assert "runner: the gate is open\r\n" in screen
    run_id = re.findall(r"^([0-9a-f]{32})\r$", screen, re.MULTILINE)
    assert len(run_id) == 1 and (run_artifacts_dir(run_id[0]) / "launched.json").is_file()


def _detach_on_a_terminal(args: list[str], gate: dict[str, str]) -> tuple[int, str]:
    """The CLI on a pseudo-terminal; the gate opens once its live line has been redrawn."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*RUNNER, *args], env={**os.environ, **gate},
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            close_fds=True)  # fmt: skip
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if re.search(rb"waiting for the gate \d+\.[1-9]s", screen):  # ticked at least once
            Path(gate[GATE_VARIABLE]).touch()
        if not select.select([leader], [], [], 0.1)[0]:
            continue
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO once the child closed the terminal
            break
        if not data:
            break
        screen += data
    os.close(leader)
    return proc.wait(timeout=60), screen.decode(errors="replace")


def test_the_api_returns_an_asynchronous_run_once_launched(tmp_path: Path) -> None:
    project, flag = _waiting_project(tmp_path)
    run = runner.run(str(project), synchronous=False)
    assert (run_artifacts_dir(run.run_id) / "launched.json").is_file()
    assert run.status() is RunStatus.RUNNING
    flag.touch()
    assert run.wait(timeout=60) is True


def test_the_api_raises_for_an_asynchronous_run_that_failed_before_launch(
    tmp_path: Path,
) -> None:
    with pytest.raises(RunnerError) as failed:
        runner.run(str(_unbuildable_project(tmp_path)), synchronous=False)
    message = failed.value.message
    assert re.match(r"run [0-9a-f]{32} FAILED before it was launched: cannot resolve", message)
    assert failed.value.hint is not None and "env-build.log" in failed.value.hint
    [rec] = records()
    assert rec["status"] == "FAILED"


def test_detach_waits_the_same_way_with_a_tracking_server(tmp_path: Path) -> None:
    from runner.server.app import Settings
    from tests.live_server import serving

    with serving(Settings(store_uri=f"sqlite:///{tmp_path / 'server.db'}")) as url:
        server = {"RUNNER_TRACKING_URI": url}
        project, flag = _waiting_project(tmp_path / "good")
        launched = run_cli("run", str(project), "--detach", env=server)
        assert launched.returncode == 0, launched.stderr
        run_id = launched.stdout.strip()
        assert (run_artifacts_dir(run_id) / "launched.json").is_file()
        flag.touch()
        failed = run_cli("run", str(_unbuildable_project(tmp_path)), "--detach", env=server)
        assert failed.returncode == 1
        assert "FAILED before it was launched: cannot resolve the dependencies" in failed.stderr
        _wait_for(lambda: _status(run_id, server) == "FINISHED", "the run to finish")


def _status(run_id: str, env: dict[str, str]) -> str:
    shown = run_cli("runs", "show", run_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["status"])


def _supervisor_pid(run_id: str) -> int:
    from runner.store.open import open_store

    store = open_store()
    try:
        live = store.live_run(run_id)
    finally:
        store.close()
    assert live is not None and live.runner_pid is not None
    return live.runner_pid
