"""The cgroup warm-up re-writes this process into its own cgroup for a while, then stops."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from backends import cgroup_warmup
from backends.local_processes import own_cgroup


@pytest.fixture(autouse=True)
def _no_earlier_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _wait_stopped(), "a warm-up thread of another test is still running"
    monkeypatch.setattr(cgroup_warmup, "_deadline", 0.0)


def _wait_stopped(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        thread = cgroup_warmup._thread
        if thread is None or not thread.is_alive():
            return True
        time.sleep(0.01)
    return False


def test_writes_own_pid_until_the_deadline_then_stops(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    cgroup_warmup.keep_warm(str(procs), seconds=0.05)
    assert _wait_stopped(), "the warm-up thread outlived its deadline"
    assert procs.read_text().startswith(str(os.getpid()))


def test_an_unwritable_procs_file_ends_the_thread_quietly(tmp_path: Path) -> None:
    cgroup_warmup.keep_warm(str(tmp_path / "missing" / "cgroup.procs"), seconds=5.0)
    assert _wait_stopped(0.5), "the thread kept trying a file it cannot open"


def test_the_process_stays_in_its_own_cgroup() -> None:
    own = own_cgroup()
    if own is None or not os.access(own / "cgroup.procs", os.W_OK):
        pytest.skip("no writable cgroup v2 group here")
    before = Path("/proc/self/cgroup").read_text()
    cgroup_warmup.keep_warm(str(own / "cgroup.procs"), seconds=0.05)
    assert _wait_stopped()
    assert Path("/proc/self/cgroup").read_text() == before
