"""The batch rendezvous of supervisors (runner.execution.batch) with real processes and files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.execution.batch import Batch, create_batch, note_supervisor

JOIN_LATER = """
import sys, time
from pathlib import Path
from runner.execution.batch import Batch
time.sleep(float(sys.argv[3]))
Batch(Path(sys.argv[1]), int(sys.argv[2])).join({"run_id": "late"})
"""


def _batch(size: int, max_parallel: int = 2) -> Path:
    return create_batch([f"run{i}" for i in range(size)], max_parallel)


def _exited_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_the_variable_names_the_folder_and_index_even_with_colons(tmp_path: Path) -> None:
    batch = Batch(tmp_path / "a:b", 3)
    assert Batch.parse(batch.variable()) == batch


def test_gather_waits_for_a_member_on_its_way_then_returns_every_joined_one() -> None:
    root = _batch(2, max_parallel=5)
    first = Batch(root, 0)
    first.join({"run_id": "run0"})
    later = subprocess.Popen([sys.executable, "-c", JOIN_LATER, str(root), "1", "0.5"])
    note_supervisor(root, 1, later.pid)
    started = time.monotonic()
    members = first.gather(timeout=60)
    later.wait(10)
    assert members == {0: {"run_id": "run0"}, 1: {"run_id": "late"}}
    assert time.monotonic() - started >= 0.4  # it did wait for the second one
    assert first.max_parallel == 5
    assert (root / "joined-0.json").stat().st_mode & 0o777 == 0o600  # may hold a secret


def test_a_withdrawn_member_or_one_whose_supervisor_died_is_not_waited_for() -> None:
    root = _batch(3)
    Batch(root, 0).join({"run_id": "run0"})
    Batch(root, 1).withdraw()
    note_supervisor(root, 2, _exited_pid())
    started = time.monotonic()
    assert Batch(root, 0).gather(timeout=60) == {0: {"run_id": "run0"}}
    assert time.monotonic() - started < 30


def test_a_member_that_joined_stays_joined_when_it_withdraws_later() -> None:
    root = _batch(1)
    member = Batch(root, 0)
    member.join({"run_id": "run0"})
    member.withdraw()  # the supervisor's last word after its run ended: it had joined
    assert member.gather(timeout=60) == {0: {"run_id": "run0"}}


def test_gather_gives_up_on_a_live_member_after_the_timeout() -> None:
    root = _batch(2)
    Batch(root, 0).join({"run_id": "run0"})
    note_supervisor(root, 1, os.getpid())  # alive, and never joins
    assert Batch(root, 0).gather(timeout=0.3) == {0: {"run_id": "run0"}}


def test_one_submission_for_the_batch_and_a_late_member_on_its_own() -> None:
    root = _batch(3)
    for index in (0, 1):
        Batch(root, index).join({"run_id": f"run{index}"})
    calls: list[list[int]] = []

    def submit(members: dict[int, dict[str, str]]) -> dict[int, str]:
        calls.append(sorted(members))
        return {index: f"job{len(calls)}_{index}" for index in members}

    members = Batch(root, 0).gather(timeout=0)
    assert Batch(root, 0).submit_once(members, submit) == "job1_0"
    assert Batch(root, 1).submit_once(members, submit) == "job1_1"  # read, not submitted again
    Batch(root, 2).join({"run_id": "run2"})  # joined after the batch was submitted
    assert Batch(root, 2).submit_once(Batch(root, 2).gather(timeout=0), submit) == "job2_2"
    assert calls == [[0, 1], [2]]


def test_a_failed_submission_is_tried_again_by_the_next_member() -> None:
    root = _batch(2)
    for index in (0, 1):
        Batch(root, index).join({"run_id": f"run{index}"})
    members = Batch(root, 0).gather(timeout=0)

    def refuse(members: dict[int, dict[str, str]]) -> dict[int, str]:
        raise RuntimeError("sbatch: error: Slurm temporarily unable to accept job")

    with pytest.raises(RuntimeError, match="temporarily unable"):
        Batch(root, 0).submit_once(members, refuse)
    assert Batch(root, 1).submit_once(members, lambda m: dict.fromkeys(m, "j")) == "j"
