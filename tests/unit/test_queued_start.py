"""A queueing backend's run stays SCHEDULED after launch and turns RUNNING when its job starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import backend as backend_module
from runner.backend import LogChunk, Prepared
from runner.execution import orchestrator
from runner.home import run_artifacts_dir
from runner.status import RunStatus
from tests.unit.test_orchestrator import (
    FINISHED,
    InProcBackend,
    InProcHandle,
    RecordingStore,
    Script,
    _run,
    plan,
    script,
    store,
)

__all__ = ["plan", "script", "store"]  # the fixtures, used by name


class QueuedHandle(InProcHandle):
    """SCHEDULED until ``released`` is set; then RUNNING, then FINISHED."""

    def __init__(self, script: Script, artifacts: Path, released: threading.Event) -> None:
        super().__init__(script, artifacts)
        self.released = released

    def status(self) -> RunStatus:
        return RunStatus.RUNNING if self.released.is_set() else RunStatus.SCHEDULED

    def logs(self) -> Iterator[LogChunk]:
        if self.script.block is not None:
            self.script.block()
        yield LogChunk("stdout", b"ran\n")


class QueueingBackend(InProcBackend):
    name = "inproc"
    queues = True
    released = threading.Event()

    def launch(self, prepared: Prepared) -> QueuedHandle:
        self.script.launched += 1
        artifacts = run_artifacts_dir(prepared.request.run_id)
        return QueuedHandle(self.script, artifacts, self.released)


def _until(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.05)
    return False


def test_a_queued_run_is_scheduled_until_its_job_starts(
    script: Script, store: RecordingStore, plan: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        backend_module,
        "available_backends",
        lambda: {"inproc": "tests.unit.test_queued_start:QueueingBackend"},
    )
    monkeypatch.setattr(QueueingBackend, "released", threading.Event())
    monkeypatch.setattr(orchestrator, "INGEST_SECONDS", 0.05)
    seen: dict[str, RunStatus] = {}

    def in_queue_then_started() -> None:
        run_id = store.store.live_runs()[0].run_id
        time.sleep(0.3)  # several watchdog ticks while the job waits
        seen["queued"] = store.get_run(run_id).status
        QueueingBackend.released.set()
        _until(lambda: store.get_run(run_id).status is RunStatus.RUNNING)
        seen["started"] = store.get_run(run_id).status

    script.block = in_queue_then_started
    script.exit = FINISHED
    outcome = _run(plan, store)  # type: ignore[arg-type]
    assert outcome.error is None
    assert seen == {"queued": RunStatus.SCHEDULED, "started": RunStatus.RUNNING}
    assert store.get_run(outcome.run_id).status is RunStatus.FINISHED


def test_a_job_that_ran_between_two_ticks_is_still_recorded_started(
    script: Script, store: RecordingStore, plan: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        backend_module,
        "available_backends",
        lambda: {"inproc": "tests.unit.test_queued_start:QueueingBackend"},
    )
    released = threading.Event()
    released.set()
    monkeypatch.setattr(QueueingBackend, "released", released)
    monkeypatch.setattr(orchestrator, "INGEST_SECONDS", 60.0)  # no tick during the run
    started: list[str] = []
    store.after_start = lambda: started.append("RUNNING")
    outcome = _run(plan, store)  # type: ignore[arg-type]
    assert outcome.error is None
    assert started == ["RUNNING"]
    assert store.get_run(outcome.run_id).status is RunStatus.FINISHED


def test_a_local_style_backend_is_running_before_it_launches(
    script: Script, store: RecordingStore, plan: object
) -> None:
    states: list[RunStatus] = []
    script.in_launch = lambda: states.append(store.store.live_runs()[0].status)
    outcome = _run(plan, store)  # type: ignore[arg-type]
    assert outcome.error is None
    assert states == [RunStatus.RUNNING]
