"""Where a process's Slurm jobs stand: one batched question for all of them, with backoff.

``job_states`` answers for any set of jobs with at most one call per source: ``squeue --json``
for the jobs Slurm still schedules or runs, then ``sacct`` for the ended ones (accounting on),
else ``scontrol show job`` and the exit-status file the batch script writes. ``Watcher`` asks
it in one background thread for every job a process follows, polling fast while states
change and backing off to ``MAX_POLL_SECONDS`` while they do not.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Mapping

from backends.slurm import client
from backends.slurm.script import JobFiles
from backends.slurm.state import JobState
from runner.errors import BackendError

MIN_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 2.0
# How long the end of a job that may be requeued must persist before it counts: while slurmctld
# requeues a job, squeue/sacct can report the killed attempt FAILED for a second or more (and
# the attempt's exit-status file pokes an immediate poll, so "the next poll" is not enough).
CONFIRM_SECONDS = 3.0
BACKOFF = 1.5


def job_states(files_of: Mapping[str, JobFiles]) -> dict[str, JobState]:
    """The state of each job (key → state); jobs nobody knows any more are left out."""
    live = client.live_states(files_of)
    ended = [key for key in files_of if key not in live or live[key].ended]
    if not ended:
        return live
    finals = _final_states(ended, files_of, live)
    return {**live, **finals}


def _final_states(
    keys: list[str], files_of: Mapping[str, JobFiles], live: Mapping[str, JobState]
) -> dict[str, JobState]:
    """Jobs squeue reports ended, or does not list: sacct's word on an ended job when
    accounting is on (slurmdbd may lag: squeue's own end then), else slurmctld's; the
    script's exit-status file only when no part of Slurm knows the job any more."""
    accounted = client.accounted_states(keys) if client.accounting_enabled() else {}
    # squeue did not list it (or sacct has no end yet): ask slurmctld itself too
    undecided = [k for k in keys if k not in live or not _has_ended(accounted.get(k))]
    controller = client.controller_states() if undecided else {}
    found: dict[str, JobState] = {}
    for key in keys:
        state = _decided(live.get(key), accounted.get(key), controller.get(key))
        state = _with_script_code(state, files_of[key]) or _from_exit_file(key, files_of[key])
        if state is not None:
            found[key] = state
    return found


def _with_script_code(state: JobState | None, files: JobFiles) -> JobState | None:
    """A job that ran its script to the end: the code the script wrote is the entry point's.
    Slurm's own can lag behind it (an array task just ended can show FAILED with code 0 in
    squeue while slurmdbd has not caught up), so the script's word wins where it exists."""
    if state is None or state.state not in ("COMPLETED", "FAILED") or state.exit_signal:
        return state
    code = files.last_exit()
    if code is None or code == state.exit_code:
        return state
    return dataclasses.replace(state, state="COMPLETED" if code == 0 else "FAILED", exit_code=code)


def _decided(
    live: JobState | None, accounted: JobState | None, controller: JobState | None
) -> JobState | None:
    """slurmctld (squeue, scontrol) is current and slurmdbd may lag: a job slurmctld still
    runs or queues (requeued, say) is not over; else sacct's end, else slurmctld's."""
    for current in (live, controller):
        if current is not None and not current.ended:
            return current
    if accounted is not None and accounted.ended:
        return accounted
    return next((state for state in (live, controller) if state is not None), accounted)


def _has_ended(state: JobState | None) -> bool:
    return state is not None and state.ended


def _from_exit_file(key: str, files: JobFiles) -> JobState | None:
    """Slurm forgot the job (no accounting, past MinJobAge): the script's own record of it."""
    code = files.last_exit()
    if code is None:
        return None
    return JobState(key, "COMPLETED" if code == 0 else "FAILED", "", code)


class Watcher:
    """Follows jobs for a whole process: one poller thread, one batched question per tick."""

    def __init__(self) -> None:
        self._files: dict[str, JobFiles] = {}
        self._states: dict[str, JobState] = {}
        self._errors: dict[str, str] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._poked = False
        self._confirm: set[str] = set()
        self._tentative: dict[str, tuple[JobState, float]] = {}  # an end, when first seen
        self.polls = 0

    def follow(self, key: str, files: JobFiles, *, confirm_end: bool = False) -> None:
        """Watch ``key``; with ``confirm_end`` (a job Slurm may requeue) an end counts only
        once polls have reported it for ``CONFIRM_SECONDS``: slurmctld can show a failed
        attempt's state for a moment before it requeues the job."""
        with self._changed:
            self._files[key] = files
            if confirm_end:
                self._confirm.add(key)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="slurm-watch", daemon=True)
                self._thread.start()

    def state(self, key: str) -> JobState | None:
        with self._changed:
            return self._states.get(key)

    def error(self, key: str) -> str | None:
        with self._changed:
            return self._errors.get(key)

    def wait_for_change(self, key: str, seen: JobState | None, timeout: float) -> JobState | None:
        """Block until ``key``'s state differs from ``seen`` (or ``timeout``); the state."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._states.get(key) != seen or key in self._errors, timeout
            )
            return self._states.get(key)

    def poke(self) -> None:
        """Ask again now (after a cancel, or when a job's script wrote its exit status)
        instead of after the backoff."""
        with self._changed:
            self._poked = True
            self._changed.notify_all()

    def _run(self) -> None:
        interval = MIN_POLL_SECONDS
        while True:
            with self._changed:
                watched = {k: f for k, f in self._files.items() if self._open(k)}
                if not watched:
                    self._changed.wait()
                    continue
            changed = self._poll(watched)
            interval = MIN_POLL_SECONDS if changed else min(interval * BACKOFF, MAX_POLL_SECONDS)
            with self._changed:
                self._changed.wait_for(lambda: self._poked, interval)
                if self._poked:
                    self._poked, interval = False, MIN_POLL_SECONDS

    def _open(self, key: str) -> bool:
        return not _has_ended(self._states.get(key)) and key not in self._errors

    def _poll(self, watched: Mapping[str, JobFiles]) -> bool:
        self.polls += 1
        error: str | None = None
        try:
            states = job_states(watched)
        except BackendError as exc:  # the controller is restarting, say: ask again later
            states, error = {}, exc.message
        with self._changed:
            changed = any(self._states.get(k) != s for k, s in states.items())
            self._states.update(self._confirmed(states))
            self._note_missing(watched, states, error)
            self._changed.notify_all()
        return changed

    def _confirmed(self, states: Mapping[str, JobState]) -> dict[str, JobState]:
        """The states to publish: an end of a job in ``_confirm`` waits until it has lasted
        ``CONFIRM_SECONDS`` (polls go on at the fast interval meanwhile: nothing is published)."""
        published = {}
        now = time.monotonic()
        for key, state in states.items():
            if key in self._confirm and state.ended:
                seen, since = self._tentative.get(key, (None, now))
                if seen != state:
                    self._tentative[key] = (state, now)
                    continue
                if now - since < CONFIRM_SECONDS:
                    continue
            self._tentative.pop(key, None)
            published[key] = state
        return published

    def _note_missing(
        self, watched: Iterable[str], states: Mapping[str, JobState], error: str | None
    ) -> None:
        for key in watched:
            if key in states:
                self._errors.pop(key, None)
            elif error is None:  # squeue knows a job from its submission on
                self._errors[key] = f"Slurm job {key} is gone and its outcome unknown"


_WATCHER: Watcher | None = None
_LOCK = threading.Lock()


def watcher() -> Watcher:
    """The process's one watcher."""
    global _WATCHER
    with _LOCK:
        if _WATCHER is None:
            _WATCHER = Watcher()
        return _WATCHER
