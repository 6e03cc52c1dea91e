"""After a run's terminal status, no process of it is left: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.local_processes import RunCgroup
from runner.procinfo import is_alive
from runner.store.open import open_store
from tests.helpers import record, records, run_cli, spawn_cli, write_project

# Each line starts one kind of process a run can leave behind and notes its pid.
LEAVERS = {
    "child": "sleep 300 & echo $! >> pids",
    "ignores SIGTERM": "(trap '' TERM; exec sleep 300) & echo $! >> pids",
    "left the session": "setsid sleep 300 & echo $! >> pids",
    "daemon": "(setsid bash -c 'sleep 300 & echo $! >> pids' &)",
}
HOLD = "while [ $(wc -l < pids) -lt {n} ]; do sleep 0.05; done; touch ready; sleep 300; wait"


def _cgroups_here() -> bool:
    cgroup = RunCgroup.create("probe")
    if cgroup is None:
        return False
    cgroup.remove()
    return True


def _leavers(with_session_escapes: bool) -> dict[str, str]:
    """Processes that leave the session are tracked only where a cgroup can be made."""
    if with_session_escapes:
        return LEAVERS
    return {k: v for k, v in LEAVERS.items() if k in ("child", "ignores SIGTERM")}


def _project(tmp_path: Path, leavers: dict[str, str], hold: bool = True) -> Path:
    script = "\n".join([": > pids", *leavers.values()])
    if hold:
        script += "\n" + HOLD.format(n=len(leavers))
    else:
        script += f"\nwhile [ $(wc -l < pids) -lt {len(leavers)} ]; do sleep 0.05; done"
    mlproject = """
        name: t
        entry_points:
          main:
            command: "bash run.sh"
    """
    return write_project(tmp_path / "proj", {"MLproject": mlproject, "run.sh": script})


def _pids(project: Path) -> list[int]:
    return [int(line) for line in (project / "pids").read_text().split()]


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if is_alive(pid, None)]


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited in vain for {what}")
        time.sleep(0.05)


def _started(project: Path) -> list[int]:
    _wait_for((project / "ready").exists, "the entry point to start its processes")
    pids = _pids(project)
    assert len(_alive(pids)) == len(pids)
    return pids


@pytest.fixture
def cgroups() -> bool:
    return _cgroups_here()


def test_sigkilled_runner_leaves_nothing_once_marked_failed(tmp_path: Path, cgroups: bool) -> None:
    project = _project(tmp_path, _leavers(cgroups))
    runner = spawn_cli("run", str(project))
    pids = _started(project)
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    [rec] = records()  # a later command reconciles: the lost run's processes go first
    assert rec["status"] == "FAILED"
    assert "died (runner_lost)" in rec["failure_reason"]
    assert _alive(pids) == []


def test_sigkilled_supervisor_leaves_nothing_once_marked_failed(
    tmp_path: Path, cgroups: bool
) -> None:
    project = _project(tmp_path, _leavers(cgroups))
    run_id = run_cli("run", str(project), "--detach").stdout.strip()
    pids = _started(project)
    supervisor = _supervisor_of(run_id)
    os.kill(supervisor, signal.SIGKILL)
    _wait_for(lambda: not is_alive(supervisor, None), "the supervisor to die")
    rec = record(run_id)  # reconciles
    assert rec["status"] == "FAILED"
    assert f"runner process {supervisor} " in rec["failure_reason"]
    assert _alive(pids) == []


def _supervisor_of(run_id: str) -> int:
    store = open_store()
    try:
        live = store.live_run(run_id)
    finally:
        store.close()
    assert live is not None and live.runner_pid is not None
    return live.runner_pid


def test_cancel_kills_a_group_member_that_ignores_sigterm(tmp_path: Path) -> None:
    project = _project(tmp_path, _leavers(False))
    runner = spawn_cli("run", str(project))
    pids = _started(project)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 1, err
    assert records()[0]["status"] == "KILLED"
    assert _alive(pids) == []  # the runner waited for all of them, not just the leader


def test_what_a_finished_entry_point_left_running_is_ended(tmp_path: Path, cgroups: bool) -> None:
    project = _project(tmp_path, _leavers(cgroups), hold=False)
    result = run_cli("run", str(project))
    assert result.returncode == 0, result.stderr
    assert records()[0]["status"] == "FINISHED"
    assert _alive(_pids(project)) == []


ADOPTING_RUNNER = """
    import json, sys
    from pathlib import Path

    from backends import local_processes
    from backends.local import LocalBackend
    from runner.backend import LaunchRequest
    from runner.procinfo import become_subreaper
    from runner.project.records import EnvSpec, ProjectSpec

    local_processes.RunCgroup.create = classmethod(lambda cls, run_id: None)  # no cgroup here
    assert become_subreaper()
    work = Path(sys.argv[1])
    spec = ProjectSpec(root=work, name="t", env=EnvSpec(kind="system"))
    request = LaunchRequest(run_id="r1", command=sys.argv[2], work_dir=work, env={}, spec=spec)
    backend = LocalBackend()
    handle = backend.launch(backend.prepare(request))
    list(handle.logs())
    print(json.dumps(handle.wait().status.value))
"""


def test_without_a_cgroup_a_daemon_is_found_through_the_adopting_runner(tmp_path: Path) -> None:
    daemon = {"daemon": LEAVERS["daemon"]}
    project = _project(tmp_path, daemon, hold=False)
    script = tmp_path / "adopting_runner.py"
    script.write_text(textwrap.dedent(ADOPTING_RUNNER))
    result = subprocess.run(
        [sys.executable, str(script), str(project), "bash run.sh"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "FINISHED"
    assert _alive(_pids(project)) == []
