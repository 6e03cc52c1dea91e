"""Run the steps in DAG order: up to max-parallel at once, the cache, retries with backoff,
timeouts, the failure policy, and cancellation (^C or SIGTERM of this process)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runner.errors import RunnerError
from runner.execution.interrupts import Cancelled, deferred, raise_pending
from runner.status import RunStatus
from runner.workflow import steps as step_runs
from runner.workflow.durations import shown
from runner.workflow.launch import Launcher
from runner.workflow.outputs import output_tags, output_value
from runner.workflow.refs import Ref, substitute
from runner.workflow.state import DONE, SUCCEEDED, StepState

if TYPE_CHECKING:
    from runner.store import Store
    from runner.workflow.cachekey import KeyParts
    from runner.workflow.progress import Reporter
    from runner.workflow.spec import WorkflowSpec

TICK = 0.01  # how often running steps are polled: small next to any step's own start-up
CANCEL_SECONDS = 30.0
STORE_POLL = 0.02
# steps on a backend that batches are limited by the batch (a job array's %max-parallel), not
# by --max-parallel; this bounds their supervisors (about 40 MB each) on this host
BATCHED_LIMIT = 100


@dataclass(frozen=True)
class Options:
    max_parallel: int = 1
    on_failure: str = "stop"
    use_cache: bool = True
    refresh: frozenset[str] = frozenset()
    parameters: Mapping[str, str] = field(default_factory=dict)  # the workflow's, resolved
    reuse: Mapping[str, str] = field(default_factory=dict)  # resume: step → its FINISHED run


class Scheduler:
    def __init__(
        self,
        spec: WorkflowSpec,
        store: Store,
        planner: step_runs.Planner,
        keys: KeyParts,
        reporter: Reporter,
        options: Options,
    ) -> None:
        self.spec, self.store, self.planner, self.keys = spec, store, planner, keys
        self.reporter, self.options = reporter, options
        self.steps = {name: StepState(step) for name, step in spec.steps.items()}
        self.stopping = False
        self.exited: list[subprocess.Popen[bytes]] = []
        self.launcher = Launcher(store, options.max_parallel)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> dict[str, StepState]:
        """Every step ends in a DONE status; ^C or SIGTERM cancels the running ones (KILLED),
        starts no more, and is raised again."""
        try:
            while not all(s.status in DONE for s in self.steps.values()):
                progressed = self._start_ready() | self._poll_running()
                self.reporter.tick(self.steps)
                if not progressed:
                    time.sleep(TICK)
        except (KeyboardInterrupt, Cancelled):
            self._cancel_all()
            raise
        finally:
            self.launcher.close()
            self.reporter.close(self.steps)
            for process in self.exited:
                with contextlib.suppress(Exception):
                    process.wait(CANCEL_SECONDS)
        return self.steps

    def _running(self) -> list[StepState]:
        return [s for s in self.steps.values() if s.status == "running"]

    def _start_ready(self) -> bool:
        started = False
        # counted once a pass (a sweep has many pending steps): [others, batched]
        running = [0, 0]
        for step in self._running():
            running[self._batched(step)] += 1
        for step in self.steps.values():
            if step.status != "pending":
                continue
            blocked = self._blocked_by(step)
            if blocked is not None or self.stopping:
                self._skip(step, blocked)
                started = True
            elif self._has_room(step, running) and self._can_start(step):
                self._start(step)
                running[self._batched(step)] += step.status == "running"
                started = True
        self._supervise(self.launcher.flush())
        return started

    def _batched(self, step: StepState) -> bool:
        return self.launcher.batches(self.planner.backend_of(step.spec))

    def _has_room(self, step: StepState, running: list[int]) -> bool:
        if self._batched(step):
            return running[1] < BATCHED_LIMIT
        return running[0] < self.options.max_parallel

    def _supervise(self, started: Mapping[str, subprocess.Popen[bytes]]) -> None:
        for step in self._running():
            if step.run_id is not None and step.run_id in started:
                step.process = started[step.run_id]

    def _blocked_by(self, step: StepState) -> str | None:
        for need in step.spec.needs:
            status = self.steps[need].status
            if status in DONE and status not in SUCCEEDED:
                return need
        return None

    def _can_start(self, step: StepState) -> bool:
        needs_done = all(self.steps[n].status in SUCCEEDED for n in step.spec.needs)
        return needs_done and time.monotonic() >= step.not_before

    def _skip(self, step: StepState, blocked: str | None) -> None:
        if step.attempt:  # it failed before and waited for a retry that will not come
            step.status = "failed"
            self.reporter.event(step, f"{step.reason}; not retried: the workflow stops")
            return
        step.status = "skipped"
        step.reason = (
            f"not run: step '{blocked}' did not finish"
            if blocked
            else "not run: the workflow stops after a failed step"
        )
        self.reporter.event(step, step.reason)

    # -- starting a step -----------------------------------------------------------------

    def _start(self, step: StepState) -> None:
        step.attempt += 1
        step.started, step.ended, step.timed_out = time.monotonic(), None, False
        try:
            plan = self.planner.plan(step.spec, self._values(step))
            step.key = self.keys.step_key(plan, [self.steps[n].key or "" for n in step.spec.needs])
        except RunnerError as exc:
            self._failed(step, exc.message, retry=False)
            return
        reused = self._reusable(step)
        if reused is not None:
            self._reuse(step, plan, reused)
            return
        step.plan = plan
        with deferred():  # a ^C now still finds the process to cancel in step.process
            step.run_id = step_runs.submit_step(self.store, plan, self._tags(step))
            step.status = "running"
            step.process = self._launch(step)
        if step.spec.timeout is not None:
            step.deadline = time.monotonic() + step.spec.timeout
        retry = f" (attempt {step.attempt})" if step.attempt > 1 else ""
        self.reporter.event(step, f"running as run {step.run_id}{retry}")
        raise_pending()

    def _launch(self, step: StepState) -> subprocess.Popen[bytes] | None:
        assert step.run_id is not None and step.plan is not None
        return self.launcher.start(step.run_id, step.plan)

    def _values(self, step: StepState) -> dict[str, str]:
        def value_of(ref: Ref) -> str:
            if ref.step is None:
                return self.options.parameters[ref.name]
            upstream = self.steps[ref.step]
            assert upstream.source_run is not None
            return output_value(self.store, ref.step, upstream.source_run, ref.name)

        return {k: substitute(v, value_of) for k, v in step.spec.parameters.items()}

    def _tags(self, step: StepState) -> dict[str, str]:
        tags = {step_runs.STEP_TAG: step.name, step_runs.ATTEMPT_TAG: str(step.attempt)}
        if step.key:
            tags[step_runs.CACHE_KEY_TAG] = step.key
        return tags

    def _reusable(self, step: StepState) -> str | None:
        """The run this step reuses: its own from the run being resumed, or a cache hit."""
        if step.name in self.options.reuse:
            return self.options.reuse[step.name]
        use = self.options.use_cache and step.spec.cache and step.name not in self.options.refresh
        return self.store.cached_run(step.key) if use and step.key else None

    def _reuse(self, step: StepState, plan: object, source: str) -> None:
        from runner.execution.plan import Plan

        assert isinstance(plan, Plan)
        step_runs.remove_copies(plan)
        tags = {
            **self._tags(step),
            step_runs.CACHED_FROM_TAG: source,
            **output_tags(self.store, source),
        }
        step.run_id = step_runs.record_reused(self.store, plan, tags)
        step.source_run, step.status, step.ended = source, "cached", time.monotonic()
        self.reporter.event(step, f"cached from {source} (run {step.run_id})")

    # -- following running steps ---------------------------------------------------------

    def _poll_running(self) -> bool:
        changed = False
        for step in self._running():
            process = step.process
            assert process is not None  # every running step's supervisor started in its pass
            if process.poll() is None and not self._recorded_end(step):
                self._check_deadline(step)
                continue
            self.exited.append(process)  # reaped later: its interpreter may still exit
            self._ended(step, process.returncode)
            changed = True
        self.exited = [p for p in self.exited if p.poll() is None]
        return changed

    def _recorded_end(self, step: StepState) -> bool:
        """The supervisor recorded the end: the next step need not wait for its exit. Asked
        at most every STORE_POLL seconds per step (the process is polled every tick)."""
        assert step.run_id is not None
        now = time.monotonic()
        if now - step.checked < STORE_POLL:
            return False
        step.checked = now
        return self.store.live_run(step.run_id) is None

    def _check_deadline(self, step: StepState) -> None:
        if step.deadline is None or step.timed_out or time.monotonic() < step.deadline:
            return
        step.timed_out = True
        assert step.run_id is not None and step.spec.timeout is not None
        with contextlib.suppress(RunnerError):
            self.store.set_tags(step.run_id, {step_runs.TIMEOUT_TAG: shown(step.spec.timeout)})
        self._signal(step)

    def _signal(self, step: StepState) -> None:
        if step.process is not None:  # None: held back for a batch, and now never started
            with contextlib.suppress(ProcessLookupError):
                step.process.send_signal(signal.SIGTERM)

    def _ended(self, step: StepState, code: int | None) -> None:
        assert step.run_id is not None
        step.ended = time.monotonic()
        record = self.store.get_run(step.run_id)
        if not record.status.is_terminal:  # the supervisor died before it could record the end
            reason = f"the step's runner process exited with code {code} without recording an end"
            self.store.finish_run(step.run_id, RunStatus.FAILED, None, reason)
            record = self.store.get_run(step.run_id)
        if step.plan is not None:
            step_runs.remove_copies(step.plan)
        if record.status is RunStatus.FINISHED:
            if step.key:
                self.store.set_cache_key(step.run_id, step.key)
            step.status, step.source_run = "finished", step.run_id
            self.reporter.event(step, f"FINISHED in {step.seconds():.2f}s")
            return
        if step.timed_out:
            assert step.spec.timeout is not None
            reason = f"timed out after {shown(step.spec.timeout)}"
        else:
            reason = record.failure_reason or f"{record.status.value.lower()}"
        # a step run someone cancelled (runner runs cancel) is not retried; a timed-out one is
        cancelled = record.status is RunStatus.KILLED and not step.timed_out
        self._failed(step, f"{record.status.value}: {reason}", retry=not cancelled)

    def _failed(self, step: StepState, reason: str, *, retry: bool) -> None:
        step.ended = step.ended or time.monotonic()
        if retry and step.attempt <= step.spec.retries and not self.stopping:
            delay = step.spec.retry_delay * 2 ** (step.attempt - 1)
            step.status, step.not_before = "pending", time.monotonic() + delay
            step.reason = reason
            self.reporter.event(step, f"{reason}; retrying in {delay:.3g}s")
            return
        step.status, step.reason = "failed", reason
        self.reporter.event(step, reason)
        if self.options.on_failure == "stop":
            self.stopping = True

    # -- cancellation --------------------------------------------------------------------

    def _cancel_all(self) -> None:
        """SIGTERM every running step's runner (it cancels its backend and records KILLED),
        then wait for each; a second ^C must not cut this short."""
        with deferred():
            self.launcher.discard()  # held back for a batch: never started, recorded KILLED
            running = self._running()
            for step in running:
                self._signal(step)
            deadline = time.monotonic() + CANCEL_SECONDS
            for step in running:
                with contextlib.suppress(Exception):
                    if step.process is not None:
                        step.process.wait(max(0.0, deadline - time.monotonic()))
                self._record_killed(step)
            for step in self.steps.values():
                if step.status == "pending":
                    step.status, step.reason = "skipped", "not run: the workflow was cancelled"
        with contextlib.suppress(KeyboardInterrupt, Cancelled):
            raise_pending()

    def _record_killed(self, step: StepState) -> None:
        assert step.run_id is not None
        reason = "the workflow was cancelled"
        with contextlib.suppress(RunnerError):
            self.store.finish_run(step.run_id, RunStatus.KILLED, None, reason)  # if still live
        step.status, step.reason, step.ended = "killed", reason, time.monotonic()
