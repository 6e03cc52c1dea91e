"""Runs a backend submits together (one Slurm job array): how their supervisors meet.

Each run of a batch keeps its own supervisor, as every run does (its own signals, logs, cancel
and recorded end). The runs one scheduler pass starts on a backend that ``batches`` share a
folder: each supervisor prepares its run as usual, then joins with what its backend needs to
submit it (or withdraws, when its run ended before that: an environment that failed to build)
and waits until every member has joined, withdrawn or died. The first to take the lock submits
everyone who joined in one call and writes the job ids down; the others read theirs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.home import runner_home

BATCH_VARIABLE = "RUNNER_BATCH"  # "<folder>:<index>" in a supervisor's environment
WAIT_VARIABLE = "RUNNER_BATCH_WAIT_SECONDS"
DEFAULT_WAIT = 900.0  # members still building their environment after this are left out
POLL_SECONDS = 0.05
LOCK_SECONDS = 600.0

Payload = dict[str, Any]
Submit = Callable[[Mapping[int, Payload]], Mapping[int, str]]


def create_batch(run_ids: Sequence[str], max_parallel: int) -> Path:
    """The folder of a new batch of ``run_ids`` (at most ``max_parallel`` running at once)."""
    root = runner_home() / "batches" / run_ids[0]
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"run_ids": list(run_ids), "max_parallel": max_parallel}
    _write_private(root / "manifest.json", manifest)
    return root


def note_supervisor(root: Path, index: int, pid: int) -> None:
    """Member ``index``'s supervisor: a member whose supervisor died is not waited for."""
    from runner.procinfo import process_start_time

    note = {"pid": pid, "start": process_start_time(pid)}
    _write_private(root / f"supervisor-{index}.json", note)


def remove_batch(root: Path) -> None:
    import shutil

    shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Batch:
    """One member's view of its batch."""

    root: Path
    index: int

    @classmethod
    def parse(cls, value: str) -> Batch:
        """The batch of a ``BATCH_VARIABLE`` value."""
        root, _, index = value.rpartition(":")
        return cls(Path(root), int(index))

    def variable(self) -> str:
        return f"{self.root}:{self.index}"

    def manifest(self) -> Payload:
        loaded: Payload = json.loads((self.root / "manifest.json").read_text())
        return loaded

    @property
    def max_parallel(self) -> int:
        return int(self.manifest()["max_parallel"])

    def join(self, payload: Payload) -> None:
        """What this member's backend needs to submit it; it is a member from now on."""
        _write_private(self._joined(self.index), payload)

    def withdraw(self) -> None:
        """This member's run ended before it joined: nobody waits for it."""
        if not self._joined(self.index).exists():
            (self.root / f"withdrawn-{self.index}").touch()

    def gather(self, timeout: float | None = None) -> dict[int, Payload]:
        """Every member that joined, once none is still on its way (or after ``timeout``)."""
        wait = timeout if timeout is not None else _wait_seconds()
        deadline = time.monotonic() + wait
        size = len(self.manifest()["run_ids"])
        while True:
            pending = [i for i in range(size) if self._on_its_way(i)]
            if not pending or time.monotonic() >= deadline:
                return {i: self._payload(i) for i in range(size) if self._joined(i).exists()}
            time.sleep(POLL_SECONDS)

    def submit_once(self, members: Mapping[int, Payload], submit: Submit) -> str:
        """This member's job id: submitted with ``members`` by whichever member locks first.
        A member that joined too late for that submission is submitted on its own."""
        from runner.locks import exclusive_lock

        with exclusive_lock(self.root / "submit.lock", timeout=LOCK_SECONDS):
            done = self._submitted()
            if self.index not in done:
                batch = members if not done else {self.index: self._payload(self.index)}
                done.update(submit(batch))
                _write_private(self.root / "submitted.json", {str(i): j for i, j in done.items()})
        return done[self.index]

    def _joined(self, index: int) -> Path:
        return self.root / f"joined-{index}.json"

    def _payload(self, index: int) -> Payload:
        loaded: Payload = json.loads(self._joined(index).read_text())
        return loaded

    def _submitted(self) -> dict[int, str]:
        try:
            found = json.loads((self.root / "submitted.json").read_text())
        except FileNotFoundError:
            return {}
        return {int(index): str(job) for index, job in found.items()}

    def _on_its_way(self, index: int) -> bool:
        if self._joined(index).exists() or (self.root / f"withdrawn-{index}").exists():
            return False
        return _supervisor_alive(self.root / f"supervisor-{index}.json")


def _supervisor_alive(note: Path) -> bool:
    from runner.procinfo import is_alive

    try:
        found = json.loads(note.read_text())
    except FileNotFoundError:
        return True  # its launcher has not written it down yet
    return is_alive(int(found["pid"]), found["start"])


def _wait_seconds() -> float:
    value = os.environ.get(WAIT_VARIABLE)
    return float(value) if value else DEFAULT_WAIT


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    # 0600, renamed into place: a payload holds the run's command line (maybe a secret)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)
