"""A run's Slurm job seen from any process: its state, its output files, cancelling it."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from backends.slurm import client
from backends.slurm.script import JobFiles
from backends.slurm.state import WAITING, JobState, exit_info
from backends.slurm.watch import Watcher, watcher
from runner.backend import ExitInfo, LogChunk
from runner.errors import BackendError
from runner.status import RunStatus

RECORD_FILE = "slurm-job.json"
KEPT_DIR = "slurm"  # the job's files, kept with the run's artifacts
FOLLOW_SECONDS = 0.2


@dataclass(frozen=True)
class JobRecord:
    """What a run keeps (``slurm-job.json`` in its artifacts) to find its job again."""

    job_id: str  # ``123``, or ``123_4`` for an array's task
    root: str  # the job's files on the shared path
    name: str
    requeue: bool = False  # Slurm may start it again after a failed attempt
    container: str = ""  # the OCI bundle the job runs in (config key `container`), if any

    def save(self, artifacts: Path) -> None:
        tmp = artifacts / f".{RECORD_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(artifacts / RECORD_FILE)

    @classmethod
    def load(cls, artifacts: Path) -> JobRecord | None:
        try:
            data = json.loads((artifacts / RECORD_FILE).read_text())
            requeue = bool(data.get("requeue", False))
            container = str(data.get("container", ""))
            return cls(str(data["job_id"]), str(data["root"]), str(data["name"]), requeue,
                       container)  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None


class OutputReader:
    """Reads what each attempt's files gained since the last call; Slurm's own at the end."""

    def __init__(self, files: JobFiles) -> None:
        self.files = files
        self._offsets: dict[Path, int] = {}
        self._attempts = 0

    def new_chunks(self, final: bool = False) -> Iterator[LogChunk]:
        for attempt in self.files.attempts():
            if attempt >= self._attempts and attempt > 0:
                note = f"runner: attempt {attempt} of the job started (requeued)\n"
                yield LogChunk("stderr", note.encode())
            self._attempts = max(self._attempts, attempt + 1)
            yield from self._read(self.files.output(attempt), "stdout")
            yield from self._read(self.files.error(attempt), "stderr")
        if final:  # e.g. "*** JOB 12 CANCELLED AT ... DUE TO TIME LIMIT ***"
            for path in sorted(self.files.root.glob("slurm-*.err")):
                yield from self._read(path, "stderr")

    def _read(self, path: Path, stream: str) -> Iterator[LogChunk]:
        offset = self._offsets.get(path, 0)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return
        if data:
            self._offsets[path] = offset + len(data)
            yield LogChunk("stdout" if stream == "stdout" else "stderr", data)


def _newly_waiting(state: JobState | None, shown: str) -> bool:
    """A queued job whose pending reason (Resources, Priority, BeginTime...) is news."""
    return state is not None and state.state in WAITING and state.reason not in (shown, "None")


class SlurmRunHandle:
    """A submitted job; the same object whether just launched or re-attached."""

    def __init__(self, record: JobRecord, artifacts: Path | None, watch: Watcher | None = None):
        self.record, self.artifacts = record, artifacts
        self.files = JobFiles(Path(record.root))
        self._watch = watch or watcher()
        self._watch.follow(record.job_id, self.files, confirm_end=record.requeue)
        self._cancelled = threading.Event()
        self._poked_attempts: set[int] = set()

    @property
    def job_id(self) -> str:
        return self.record.job_id

    def _state(self) -> JobState | None:
        return self._watch.state(self.job_id)

    def _over(self) -> bool:
        state = self._state()
        return (state is not None and state.ended) or self._watch.error(self.job_id) is not None

    def logs(self) -> Iterator[LogChunk]:
        reader, reason = OutputReader(self.files), ""
        while True:
            over = self._over()  # read before draining: nothing written before the end is lost
            state = self._state()
            if _newly_waiting(state, reason) and state is not None:
                reason = state.reason
                note = f"runner: Slurm job {self.job_id} {state.state} ({reason})\n"
                yield LogChunk("stderr", note.encode())
            yield from reader.new_chunks(final=over)
            if over:
                return
            if self._script_done(state):
                self._watch.poke()  # the script has ended: Slurm will say so soon, ask now
            self._watch.wait_for_change(self.job_id, state, FOLLOW_SECONDS)

    def _script_done(self, state: JobState | None) -> bool:
        """The current attempt wrote its exit status (once per attempt, then False)."""
        attempts = self.files.attempts()
        if not attempts or attempts[-1] in self._poked_attempts or state is None:
            return False
        if not self.files.exit_status(attempts[-1]).exists():
            return False
        self._poked_attempts.add(attempts[-1])
        return True

    def wait(self, timeout: float | None = None) -> ExitInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._over():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return ExitInfo(self.status())
            self._watch.wait_for_change(self.job_id, self._state(), min(left or 1.0, 1.0))
        self._keep_files()
        return self._end()

    def _end(self) -> ExitInfo:
        state = self._state()
        if state is not None and state.ended:
            return self._explained(exit_info(state))
        return ExitInfo(RunStatus.FAILED, None, f"{self._watch.error(self.job_id)} (runner_lost)")

    def _explained(self, info: ExitInfo) -> ExitInfo:
        """A container job Slurm cancelled before its script began: Slurm says only
        CANCELLED (the reason is in slurmd's log on the node), so runner says what it knows."""
        if not (info.status is RunStatus.KILLED and self.record.container):
            return info
        if self._cancelled.is_set() or self.files.attempts():
            return info
        why = (
            f"{info.reason} before its batch script started: with `container`, Slurm cancels "
            f"a job whose OCI bundle it cannot set up ({self.record.container} missing on the "
            "node, or no config.json there); slurmd's log on the node says why"
        )
        return ExitInfo(info.status, info.exit_code, why)

    def status(self) -> RunStatus:
        state = self._state()
        if state is None:
            return RunStatus.FAILED if self._over() else RunStatus.SCHEDULED
        return state.status

    def cancel(self, grace: float = 10.0) -> None:
        if self._cancelled.is_set() or self._over():
            return
        self._cancelled.set()
        # off-thread: a signal handler calling cancel() must not block on slurmctld
        threading.Thread(target=self._stop, args=(grace,), daemon=True).start()

    def _stop(self, grace: float) -> None:
        """scancel: Slurm sends SIGTERM, then SIGKILL after its KillWait; if the job still
        has not ended after ``grace``, its processes get SIGKILL from us."""
        with contextlib.suppress(BackendError):
            client.cancel(self.job_id)
        self._watch.poke()
        deadline = time.monotonic() + grace
        while not self._over() and time.monotonic() < deadline:
            self._watch.wait_for_change(self.job_id, self._state(), 0.5)
        if not self._over():
            with contextlib.suppress(BackendError):
                client.cancel(self.job_id, kill=True)

    def _keep_files(self) -> None:
        """Every attempt's output and the batch script go with the run's artifacts."""
        if self.artifacts is None:
            return
        kept = self.artifacts / KEPT_DIR
        if kept.resolve() == self.files.root.resolve():
            return
        with contextlib.suppress(OSError):
            shutil.copytree(self.files.root, kept, dirs_exist_ok=True)
