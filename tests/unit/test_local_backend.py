"""The local backend on its own: output streams, exit codes, nothing of a run left behind."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from backends.local import LocalBackend, LocalRunHandle
from backends.local_processes import RECORD_FILE
from runner.backend import LOST, LaunchRequest, RunRef, load_backend
from runner.procinfo import is_alive, process_start_time
from runner.project.records import EnvSpec, ProjectSpec
from runner.status import RunStatus


def _request(
    tmp_path: Path, command: str, env: dict[str, str] | None = None, artifacts: Path | None = None
) -> LaunchRequest:
    spec = ProjectSpec(root=tmp_path, name="t", env=EnvSpec(kind="system"))
    return LaunchRequest(
        run_id="r1",
        command=command,
        work_dir=tmp_path,
        env=env or {},
        spec=spec,
        artifacts_dir=artifacts,
    )


def _launch(request: LaunchRequest) -> LocalRunHandle:
    backend = LocalBackend()
    return backend.launch(backend.prepare(request))


def _collect(handle) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    out, err = b"", b""
    for chunk in handle.logs():
        if chunk.stream == "stdout":
            out += chunk.data
        else:
            err += chunk.data
    return out, err


def test_registered_under_its_name() -> None:
    assert isinstance(load_backend("local"), LocalBackend)


def test_streams_both_outputs_and_finishes(tmp_path: Path) -> None:
    handle = _launch(_request(tmp_path, "echo out; echo err >&2; pwd"))
    out, err = _collect(handle)
    info = handle.wait()
    assert out.decode().splitlines() == ["out", str(tmp_path)]
    assert err == b"err\n"
    assert (info.status, info.exit_code, info.reason) == (RunStatus.FINISHED, 0, None)


def test_exit_code_is_failed_with_reason(tmp_path: Path) -> None:
    handle = _launch(_request(tmp_path, "exit 3"))
    _collect(handle)
    info = handle.wait()
    assert (info.status, info.exit_code) == (RunStatus.FAILED, 3)
    assert info.reason == "entry point exited with code 3"


def test_killed_by_signal_is_failed(tmp_path: Path) -> None:
    handle = _launch(_request(tmp_path, "kill -9 $$"))
    _collect(handle)
    info = handle.wait()
    assert info.status is RunStatus.FAILED
    assert info.reason == "entry point killed by SIGKILL"


def test_run_env_is_layered_over_the_parent_env(tmp_path: Path) -> None:
    handle = _launch(_request(tmp_path, 'echo "$RUNNER_RUN_ID:$HOME"', {"RUNNER_RUN_ID": "abc"}))
    out, _ = _collect(handle)
    assert out.decode().startswith("abc:/")


def test_cancel_terminates_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    handle = _launch(_request(tmp_path, f"(sleep 2; touch {marker}) & sleep 60; wait"))
    time.sleep(0.3)
    assert handle.status() is RunStatus.RUNNING
    handle.cancel(grace=5)
    info = handle.wait(timeout=10)
    assert info.status is RunStatus.KILLED
    time.sleep(2.5)
    assert not marker.exists(), "a grandchild outlived cancel"
    handle.cancel()  # idempotent after the end


def test_cancel_escalates_to_sigkill(tmp_path: Path) -> None:
    handle = _launch(_request(tmp_path, "trap '' TERM; sleep 60"))
    time.sleep(0.3)
    started = time.monotonic()
    handle.cancel(grace=0.5)
    info = handle.wait(timeout=10)
    assert info.status is RunStatus.KILLED
    assert time.monotonic() - started < 5


def _pids(path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while not path.exists() or len(path.read_text().split()) < count:
        assert time.monotonic() < deadline, "the entry point never wrote its pids"
        time.sleep(0.05)
    return [int(pid) for pid in path.read_text().split()]


def test_cancel_kills_a_member_that_ignores_sigterm_after_the_leader_exits(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    handle = _launch(
        _request(tmp_path, f"(trap '' TERM; exec sleep 60) & echo $! > {pids}; sleep 60")
    )
    [stubborn] = _pids(pids, 1)
    handle.cancel(grace=0.5)  # the leader dies of SIGTERM at once; the member does not
    info = handle.wait(timeout=30)
    assert info.status is RunStatus.KILLED
    assert not is_alive(stubborn, None)


def test_what_the_entry_point_left_running_ends_with_it(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    handle = _launch(_request(tmp_path, f"sleep 60 >/dev/null & echo $! > {pids}; echo bye"))
    out, _ = _collect(handle)
    info = handle.wait(timeout=30)
    assert (out, info.status) == (b"bye\n", RunStatus.FINISHED)
    assert not is_alive(_pids(pids, 1)[0], None)


def test_reconcile_kills_the_recorded_processes_of_a_lost_run(tmp_path: Path) -> None:
    artifacts, pids = tmp_path / "artifacts", tmp_path / "pids"
    artifacts.mkdir()
    handle = _launch(_request(tmp_path, f"sleep 60 & echo $! > {pids}; wait", artifacts=artifacts))
    [child] = _pids(pids, 1)
    recorded = json.loads((artifacts / RECORD_FILE).read_text())
    assert recorded["start"] == process_start_time(recorded["leader"])
    ref = RunRef("r1", RunStatus.RUNNING, {}, artifacts)
    assert LocalBackend().reconcile([ref]) == {"r1": LOST}
    assert not is_alive(child, None) and not is_alive(recorded["leader"], None)
    assert handle.wait(timeout=30).status is RunStatus.FAILED


def _record(artifacts: Path, **changes: object) -> None:
    """A record like the one launch writes, changed where a test says."""
    artifacts.mkdir(exist_ok=True)
    handle = _launch(_request(artifacts, "true", artifacts=artifacts))
    _collect(handle)
    handle.wait()
    recorded = {**json.loads((artifacts / RECORD_FILE).read_text()), **changes}
    (artifacts / RECORD_FILE).write_text(json.dumps(recorded))


def test_reconcile_spares_processes_that_are_not_the_runs(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        _record(tmp_path / "a", leader=other.pid, start=-1.0)  # same pid, another start time
        same = {"leader": other.pid, "start": process_start_time(other.pid)}
        _record(tmp_path / "b", **same, host="elsewhere")  # a run of another host
        _record(tmp_path / "c", **same, boot="before-a-reboot")
        refs = [RunRef(r, RunStatus.RUNNING, {}, tmp_path / r) for r in ("a", "b", "c")]
        assert LocalBackend().reconcile(refs) == {"a": LOST, "b": LOST, "c": LOST}
        assert is_alive(other.pid, None)
    finally:
        other.kill()
        other.wait()
