"""Where a process's Slurm jobs stand: one batched question for all of them, with backoff.

``job_states`` answers for any set of jobs with at most one call per source: ``squeue --json``
for the jobs Slurm still schedules or runs, then ``sacct`` for the ended ones (accounting on),
else ``scontrol show job`` and the exit-status file the batch script writes. ``Watcher`` asks
it in one background thread for every job a process follows, polling fast while states
change and backing off to ``MAX_POLL_SECONDS`` while they do not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from backends.slurm import client
from backends.slurm.script import JobFiles
from backends.slurm.state import JobState
from runner.errors import BackendError

MIN_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 2.0
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
    accounted = client.accounted_states(keys) if client.accounting_enabled() else {}
    pending = [key for key in keys if not _has_ended(accounted.get(key))]
    # slurmdbd may lag a moment behind slurmctld, and without accounting only it knows
    controller = client.controller_states() if pending else {}
    found = {key: state for key, state in accounted.items() if key in keys and state.ended}
    for key in pending:
        state = _first_ended(live.get(key), controller.get(key))
        state = state or _from_exit_file(key, files_of[key])
        if state is not None:
            found[key] = state
    return found


def _has_ended(state: JobState | None) -> bool:
    return state is not None and state.ended


def _first_ended(*states: JobState | None) -> JobState | None:
    for state in states:
        if state is not None and state.ended:
            return state
    return None


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
        self.polls = 0

    def follow(self, key: str, files: JobFiles) -> None:
        with self._changed:
            self._files[key] = files
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
            self._states.update(states)
            self._note_missing(watched, states, error)
            self._changed.notify_all()
        return changed

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
