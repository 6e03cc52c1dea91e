"""The orchestrator's promises on an in-test backend: every path ends the run exactly once."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner import backend as backend_module
from runner.backend import BaseBackend, ExitInfo, LogChunk, Prepared
from runner.errors import BackendError, StoreError
from runner.execution.interrupts import Cancelled, cancellable, deferred
from runner.execution.orchestrator import LOG_FILE, execute, submit
from runner.execution.plan import Plan
from runner.home import run_artifacts_dir
from runner.status import RunStatus
from runner.store import RunRecord, Store
from runner.store.open import open_store
from runner.tracking import JOURNAL

FINISHED = ExitInfo(RunStatus.FINISHED, 0)
CANCELLED = ExitInfo(RunStatus.KILLED, None, "cancelled")
SIGTERM_REASON = "cancelled before the entry point finished"
CTRL_C_REASON = "interrupted (Ctrl-C) before the entry point finished"


def _sigterm() -> None:
    signal.raise_signal(signal.SIGTERM)


@dataclass
class Script:
    """What the in-test backend and its handle do in one test, and what was done to them."""

    chunks: list[LogChunk] = field(default_factory=list)
    exit: ExitInfo = FINISHED
    prepare_error: BaseException | None = None
    launch_error: BaseException | None = None
    in_launch: Callable[[], None] | None = None  # called while the backend launches
    logs_error: BaseException | None = None
    wait_error: BaseException | None = None
    block: Callable[[], None] | None = None  # logs() calls it, then blocks until cancelled
    in_cancel: Callable[[], None] | None = None  # called as cancel() starts
    journal: list[dict[str, Any]] = field(default_factory=list)  # what the entry point logs
    launched: int = 0
    cancels: int = 0
    cancels_done: int = 0
    waits: list[float | None] = field(default_factory=list)


class InProcHandle:
    """A run that exists only in this process; it does what its script says."""

    def __init__(self, script: Script, artifacts: Path) -> None:
        self.script = script
        self.artifacts = artifacts
        self.stopped = threading.Event()

    def logs(self) -> Iterator[LogChunk]:
        for record in self.script.journal:
            with open(self.artifacts / JOURNAL, "a") as journal:
                journal.write(json.dumps(record) + "\n")
        yield from self.script.chunks
        if self.script.logs_error is not None:
            raise self.script.logs_error
        if self.script.block is not None:
            self.script.block()
            if not self.stopped.wait(timeout=60):
                raise AssertionError("the handle was never cancelled")

    def wait(self, timeout: float | None = None) -> ExitInfo:
        self.script.waits.append(timeout)
        if self.stopped.is_set():
            return CANCELLED
        if self.script.wait_error is not None:
            raise self.script.wait_error
        return self.script.exit

    def status(self) -> RunStatus:
        return CANCELLED.status if self.stopped.is_set() else self.script.exit.status

    def cancel(self, grace: float = 10.0) -> None:
        self.script.cancels += 1
        if self.script.in_cancel is not None:
            self.script.in_cancel()
        self.stopped.set()
        self.script.cancels_done += 1


class InProcBackend(BaseBackend):
    """Found by load_backend("inproc") through the patched registry below."""

    name = "inproc"
    script = Script()

    def prepare(self, request: Any) -> Prepared:
        if self.script.prepare_error is not None:
            raise self.script.prepare_error
        return Prepared(request, facts={"inproc": "yes"})

    def launch(self, prepared: Prepared) -> InProcHandle:
        if self.script.in_launch is not None:
            self.script.in_launch()
        if self.script.launch_error is not None:
            raise self.script.launch_error
        self.script.launched += 1
        return InProcHandle(self.script, run_artifacts_dir(prepared.request.run_id))


class RecordingStore:
    """The real store, with every finish_run attempt counted and failures or signals injected."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.attempts: list[tuple[RunStatus, int | None, str | None]] = []
        self.recorded: list[tuple[RunStatus, int | None, str | None]] = []
        self.finish_failures = 0  # the next this-many finish_run calls fail as a locked db would
        self.before_finish: Callable[[], None] | None = None
        self.after_start: Callable[[], None] | None = None
        self.metrics_error: StoreError | None = None
        self.tags_error: StoreError | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def start_run(self, run_id: str) -> None:
        self.store.start_run(run_id)
        if self.after_start is not None:
            self.after_start()

    def finish_run(
        self, run_id: str, status: RunStatus, exit_code: int | None, reason: str | None
    ) -> bool:
        self.attempts.append((status, exit_code, reason))
        if self.before_finish is not None:
            hook, self.before_finish = self.before_finish, None
            hook()
        if self.finish_failures:
            self.finish_failures -= 1
            raise StoreError("tracking store runs.db: database is locked")
        done = self.store.finish_run(run_id, status, exit_code, reason)
        if done:
            self.recorded.append((status, exit_code, reason))
        return done

    def log_metrics(self, run_id: str, metrics: Any) -> None:
        if self.metrics_error is not None:
            raise self.metrics_error
        self.store.log_metrics(run_id, metrics)

    def set_tags(self, run_id: str, tags: Any) -> None:
        if self.tags_error is not None:
            raise self.tags_error
        self.store.set_tags(run_id, tags)


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    fresh = Script()
    monkeypatch.setattr(InProcBackend, "script", fresh)
    monkeypatch.setattr(
        backend_module,
        "available_backends",
        lambda: {"inproc": "tests.unit.test_orchestrator:InProcBackend"},
    )
    return fresh


@pytest.fixture
def store() -> Iterator[RecordingStore]:
    real = open_store()
    yield RecordingStore(real)
    real.close()


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: t\nentry_points:\n  main:\n    command: python train.py\n"
    )
    return Plan(
        project_dir=project,
        entry_point="main",
        command="python train.py",
        parameters={},
        source={},
        env_manager="local",
        backend="inproc",
        backend_config={},
        experiment="Default",
        run_name=None,
        parent_run_id=None,
    )


@dataclass
class Outcome:
    run_id: str
    info: ExitInfo | None = None
    error: BaseException | None = None
    chunks: list[LogChunk] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)


def _run(plan: Plan, store: RecordingStore, *, run_id: str | None = None) -> Outcome:
    """Submit (unless given a run id) and execute under cancellable(), as the CLI does."""
    outcome = Outcome(run_id or submit(plan, store))  # type: ignore[arg-type]
    try:
        with cancellable():
            outcome.info = execute(
                outcome.run_id,
                plan,
                store,  # type: ignore[arg-type]
                outcome.chunks.append,
                outcome.progress.append,
            )
    except BaseException as exc:
        outcome.error = exc
    return outcome


def _ended_once(
    store: RecordingStore, run_id: str, status: RunStatus, reason: str | None
) -> RunRecord:
    """The run was finalised exactly once, as ``status`` with ``reason``; returns its record."""
    assert [(s, r) for s, _, r in store.recorded] == [(status, reason)]
    record = store.get_run(run_id)
    assert (record.status, record.failure_reason) == (status, reason)
    assert record.end_time is not None
    return record


def test_launch_error_fails_the_run_with_its_message(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.launch_error = BackendError("cannot reach the Docker daemon at /var/run/docker.sock")
    outcome = _run(plan, store)
    assert outcome.error is script.launch_error
    message = "cannot reach the Docker daemon at /var/run/docker.sock"
    _ended_once(store, outcome.run_id, RunStatus.FAILED, message)


def test_prepare_error_fails_the_run_before_launch(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.prepare_error = BackendError("image build failed: step 3/5")
    outcome = _run(plan, store)
    assert isinstance(outcome.error, BackendError)
    _ended_once(store, outcome.run_id, RunStatus.FAILED, "image build failed: step 3/5")
    assert script.launched == 0


def test_wait_raising_is_an_internal_error_and_stops_the_entry_point(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.wait_error = RuntimeError("socket closed")
    outcome = _run(plan, store)
    assert outcome.error is script.wait_error
    reason = "internal error: RuntimeError('socket closed')"
    _ended_once(store, outcome.run_id, RunStatus.FAILED, reason)
    assert script.cancels_done == 1  # a run recorded FAILED must not run on


def test_logs_raising_stops_the_entry_point(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.chunks = [LogChunk("stdout", b"epoch 1\n")]
    script.logs_error = BackendError("the container's log stream broke off")
    outcome = _run(plan, store)
    assert outcome.error is script.logs_error
    _ended_once(store, outcome.run_id, RunStatus.FAILED, "the container's log stream broke off")
    assert script.cancels_done == 1
    assert (run_artifacts_dir(outcome.run_id) / LOG_FILE).read_bytes() == b"epoch 1\n"


def test_wait_returning_a_live_status_fails_the_run(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.exit = ExitInfo(RunStatus.RUNNING)
    outcome = _run(plan, store)
    assert isinstance(outcome.error, BackendError)
    reason = "the backend's wait() returned RUNNING instead of how the run ended"
    _ended_once(store, outcome.run_id, RunStatus.FAILED, reason)
    assert script.cancels_done == 1


def test_sigterm_during_launch_is_held_then_cancels_the_handle(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.in_launch = _sigterm
    outcome = _run(plan, store)
    assert isinstance(outcome.error, Cancelled)
    _ended_once(store, outcome.run_id, RunStatus.KILLED, SIGTERM_REASON)
    assert script.launched == 1  # the launch was not cut short...
    assert script.cancels_done == 1  # ...so the handle existed to be cancelled
    assert script.waits == [30]


def test_sigterm_while_streaming_cancels_the_blocked_handle(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.chunks = [LogChunk("stdout", b"training\n")]
    main = threading.main_thread().ident
    assert main is not None
    # from another thread, once logs() is about to block: the signal must wake the main thread
    sender = threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGTERM))
    script.block = sender.start
    outcome = _run(plan, store)
    sender.join()
    assert isinstance(outcome.error, Cancelled)
    _ended_once(store, outcome.run_id, RunStatus.KILLED, SIGTERM_REASON)
    assert script.cancels_done == 1
    assert outcome.chunks == [LogChunk("stdout", b"training\n")]


def test_a_second_signal_does_not_cut_the_cancel_short(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.in_launch = _sigterm
    script.in_cancel = _sigterm  # the user insists while the container is being stopped
    outcome = _run(plan, store)
    assert isinstance(outcome.error, Cancelled)
    _ended_once(store, outcome.run_id, RunStatus.KILLED, SIGTERM_REASON)
    assert (script.cancels, script.cancels_done) == (1, 1)
    assert script.waits == [30]


@pytest.mark.parametrize(
    ("interrupt", "reason"),
    [(KeyboardInterrupt(), CTRL_C_REASON), (Cancelled(), SIGTERM_REASON)],
    ids=["ctrl-c", "sigterm"],
)
def test_cancel_during_the_environment_build_launches_nothing(
    script: Script,
    store: RecordingStore,
    plan: Plan,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: BaseException,
    reason: str,
) -> None:
    def interrupted_build(*args: Any, **kwargs: Any) -> Any:
        raise interrupt

    monkeypatch.setattr("runner.envs.prepare.prepare_env", interrupted_build)
    outcome = _run(plan, store)
    assert outcome.error is interrupt
    _ended_once(store, outcome.run_id, RunStatus.KILLED, reason)
    assert script.launched == 0


def test_a_failed_final_write_is_retried(script: Script, store: RecordingStore, plan: Plan) -> None:
    store.finish_failures = 2
    outcome = _run(plan, store)
    assert outcome.info == FINISHED
    _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)
    assert len(store.attempts) == 3


def test_a_failed_final_write_keeps_the_failure_reason(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.launch_error = BackendError("no such image: trainer:1")
    store.finish_failures = 1
    outcome = _run(plan, store)
    assert outcome.error is script.launch_error  # the store's hiccup does not hide the cause
    _ended_once(store, outcome.run_id, RunStatus.FAILED, "no such image: trainer:1")


def test_a_final_write_that_keeps_failing_says_what_was_lost(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.exit = ExitInfo(RunStatus.FAILED, 3, "entry point exited with code 3")
    store.finish_failures = 100
    outcome = _run(plan, store)
    assert isinstance(outcome.error, StoreError)
    assert outcome.error.message == (
        f"run {outcome.run_id} ended FAILED (entry point exited with code 3) but its final "
        "status could not be recorded: tracking store runs.db: database is locked"
    )
    assert outcome.error.hint == (
        "check that the tracking store is writable (disk space, locks); the run stays RUNNING "
        "until a later runner command notices that this runner is gone"
    )
    assert len(store.attempts) > 1 and len(set(store.attempts)) == 1
    assert store.recorded == []
    assert store.get_run(outcome.run_id).status is RunStatus.RUNNING


def test_a_signal_during_the_final_write_does_not_lose_it(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    store.before_finish = _sigterm
    outcome = _run(plan, store)
    assert outcome.info == FINISHED  # the entry point had already finished: nothing to stop
    _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)


def test_a_signal_held_since_submit_launches_nothing(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    with cancellable():
        with deferred():  # a front door holding signals from submit to execute
            run_id = submit(plan, store)  # type: ignore[arg-type]
            _sigterm()
        outcome = _run(plan, store, run_id=run_id)
    assert isinstance(outcome.error, Cancelled)
    _ended_once(store, run_id, RunStatus.KILLED, SIGTERM_REASON)
    assert script.launched == 0


def test_sigterm_right_after_the_run_starts_launches_nothing(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    store.after_start = _sigterm
    outcome = _run(plan, store)
    assert isinstance(outcome.error, Cancelled)
    _ended_once(store, outcome.run_id, RunStatus.KILLED, SIGTERM_REASON)
    assert script.launched == 0


def test_exit_code_zero_finishes_and_keeps_the_output(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.chunks = [LogChunk("stdout", b"loss=0.1\n"), LogChunk("stderr", b"warning: slow\n")]
    outcome = _run(plan, store)
    assert outcome.info == FINISHED and outcome.error is None
    record = _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)
    assert record.exit_code == 0
    assert record.environment["inproc"] == "yes"  # the backend's facts are recorded
    log = run_artifacts_dir(outcome.run_id) / LOG_FILE
    assert log.read_bytes() == b"loss=0.1\nwarning: slow\n"
    assert outcome.chunks == script.chunks


def test_exit_code_three_fails_with_the_code(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.chunks = [LogChunk("stderr", b"Traceback: ValueError\n")]
    script.exit = ExitInfo(RunStatus.FAILED, 3, "entry point exited with code 3")
    outcome = _run(plan, store)
    assert outcome.info == script.exit and outcome.error is None
    record = _ended_once(store, outcome.run_id, RunStatus.FAILED, "entry point exited with code 3")
    assert record.exit_code == 3
    log = run_artifacts_dir(outcome.run_id) / LOG_FILE
    assert log.read_bytes() == b"Traceback: ValueError\n"


def test_logged_metrics_reach_the_run(script: Script, store: RecordingStore, plan: Plan) -> None:
    script.journal = [{"t": "metric", "key": "loss", "value": 0.25, "step": 1, "ts": 1}]
    outcome = _run(plan, store)
    _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)
    assert store.get_run(outcome.run_id).metrics == {"loss": 0.25}


def test_a_metric_the_store_refuses_is_skipped_and_said(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.journal = [{"t": "metric", "key": "loss", "value": 0.25, "step": 1, "ts": 1}]
    store.metrics_error = StoreError("tracking store runs.db: disk I/O error")
    outcome = _run(plan, store)
    assert outcome.info == FINISHED
    record = _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)
    assert record.tags["runner.ingest_warning"] == "tracking store runs.db: disk I/O error"
    assert outcome.progress == [
        f"run {outcome.run_id} (main) started: python train.py",
        "warning: a logged record was not recorded (tag runner.ingest_warning): "
        "tracking store runs.db: disk I/O error",
    ]


def test_a_store_that_is_down_for_the_last_metrics_does_not_change_the_outcome(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.journal = [{"t": "metric", "key": "loss", "value": 0.25, "step": 1, "ts": 1}]
    store.metrics_error = store.tags_error = StoreError("tracking store runs.db: disk I/O error")
    outcome = _run(plan, store)
    assert outcome.info == FINISHED
    _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)
    assert outcome.progress == [
        f"run {outcome.run_id} (main) started: python train.py",
        "warning: what the entry point logged last could not be recorded: "
        "tracking store runs.db: disk I/O error",
    ]


def test_a_terminal_that_goes_away_does_not_end_the_run(
    script: Script, store: RecordingStore, plan: Plan
) -> None:
    script.chunks = [LogChunk("stdout", b"epoch 1\n"), LogChunk("stdout", b"epoch 2\n")]

    def closed_pipe(chunk: LogChunk) -> None:
        raise BrokenPipeError(32, "Broken pipe")  # `runner run | head -1` once head is done

    outcome = Outcome(submit(plan, store))  # type: ignore[arg-type]
    info = execute(outcome.run_id, plan, store, closed_pipe, outcome.progress.append)  # type: ignore[arg-type]
    assert info == FINISHED
    _ended_once(store, outcome.run_id, RunStatus.FINISHED, None)
    log = run_artifacts_dir(outcome.run_id) / LOG_FILE
    assert log.read_bytes() == b"epoch 1\nepoch 2\n"
