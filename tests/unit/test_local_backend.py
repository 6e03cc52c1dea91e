"""The local backend on its own: output streams, exit codes, cancel reaching the whole group."""

from __future__ import annotations

import time
from pathlib import Path

from backends.local import LocalBackend, LocalRunHandle
from runner.backend import LaunchRequest, load_backend
from runner.project.records import EnvSpec, ProjectSpec
from runner.status import RunStatus


def _request(tmp_path: Path, command: str, env: dict[str, str] | None = None) -> LaunchRequest:
    spec = ProjectSpec(root=tmp_path, name="t", env=EnvSpec(kind="system"))
    return LaunchRequest(run_id="r1", command=command, work_dir=tmp_path, env=env or {}, spec=spec)


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
