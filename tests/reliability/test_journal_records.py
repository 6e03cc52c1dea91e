"""One bad journal record never costs another, and never decides how the run ended."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.errors import StoreError
from runner.execution.ingest import JournalReader, ingest
from runner.home import run_artifacts_dir
from runner.store import NewRun, Store
from runner.store.open import open_store
from runner.tracking import JOURNAL
from tests.helpers import run_cli, spawn_cli, write_project

EMPTY_KEY = "metric key '' must be a string of 1 to 256 characters"
LOGGING = """
    import os, pathlib, sys, time
    import runner_tracking as t

    for i in range(600):
        t.log_metric("loss", i, step=i)
    t.log_metric("", 1.0)  # refused by the store: an empty key
    t.log_metric("k" * 300, 2.0)  # refused by the store: a key of 300 characters
    t.log_metric("huge-step", 1.0, step=2**70)  # too big for a 64-bit column
    for i in range(600, 1200):
        t.log_metric("loss", i, step=i)
    t.log_param("lr", "0.1")
    go = pathlib.Path(sys.argv[1])
    deadline = time.monotonic() + 60
    while go.name != "-" and not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("trained")
"""


def _project(tmp_path: Path) -> Path:
    mlproject = """
        name: t
        entry_points:
          main:
            parameters: {go: {type: string, default: "-"}}
            command: "python3 train.py {go}"
    """
    return write_project(tmp_path / "proj", {"MLproject": mlproject, "train.py": LOGGING})


@pytest.fixture
def store() -> Iterator[Store]:
    real = open_store()
    yield real
    real.close()


def _only_run(store: Store) -> str:
    [run] = store.list_runs().runs
    return run.run_id


def _losses(store: Store, run_id: str) -> list[int]:
    return [point.step for point in store.metric_history(run_id, "loss")]


def test_bad_records_at_the_end_of_a_run_are_skipped_alone(tmp_path: Path, store: Store) -> None:
    result = run_cli("run", str(_project(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "trained" in result.stdout
    run = store.get_run(_only_run(store))
    assert (run.status.value, run.exit_code, run.failure_reason) == ("FINISHED", 0, None)
    assert _losses(store, run.run_id) == list(range(1200))
    assert run.parameters["lr"] == "0.1"
    warning = f"3 logged records were skipped; the first: {EMPTY_KEY}"
    assert run.tags["runner.ingest_warning"] == warning
    assert (
        "runner: warning: 3 logged records were not recorded (tag runner.ingest_warning): "
        f"{EMPTY_KEY}" in result.stderr
    )


def test_the_periodic_ingest_keeps_the_batch_around_a_bad_record(
    tmp_path: Path, store: Store
) -> None:
    go = tmp_path / "go"
    runner = spawn_cli("run", str(_project(tmp_path)), "-P", f"go={go}")
    try:
        run_id = _wait_for_run(store)
        # while the entry point still runs: only the watchdog's periodic ingest can record these
        _wait_until(lambda: len(_losses(store, run_id)) == 1200, what="the periodic ingest")
        assert store.get_run(run_id).status.value == "RUNNING"
        go.touch()
        assert runner.wait(timeout=60) == 0
    finally:
        runner.kill()
        runner.communicate()
    run = store.get_run(run_id)
    assert run.status.value == "FINISHED"
    assert _losses(store, run_id) == list(range(1200))  # none twice, none lost
    assert run.tags["runner.ingest_warning"].startswith("3 logged records were skipped")


class FlakyStore:
    """The real store, but down (every write refused) while ``down`` is set."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if self.down and name in ("log_metrics", "log_params", "set_tags"):
            raise StoreError("tracking store runner.db: database is locked")
        return attribute


def _journal(run_id: str, *records: dict[str, Any]) -> None:
    path = run_artifacts_dir(run_id) / JOURNAL
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as journal:
        for rec in records:
            journal.write(json.dumps(rec) + "\n")


def _metric(key: str, step: int) -> dict[str, Any]:
    return {"t": "metric", "key": key, "value": 1.0, "step": step, "ts": 1}


def test_a_store_that_is_down_loses_nothing(store: Store) -> None:
    run_id = store.create_run(
        NewRun("Default", "main", "true", "local", {}, {}, {"manager": "local"})
    )
    flaky = FlakyStore(store)
    reader = JournalReader(run_id)
    _journal(run_id, _metric("loss", 0), _metric("", 1), _metric("loss", 2))
    flaky.down = True
    with pytest.raises(StoreError, match="database is locked"):
        ingest(flaky, run_id, reader)  # type: ignore[arg-type]
    flaky.down = False
    _journal(run_id, _metric("loss", 3))
    assert ingest(flaky, run_id, reader) == 3  # type: ignore[arg-type]
    assert _losses(store, run_id) == [0, 2, 3]
    assert store.get_run(run_id).tags["runner.ingest_warning"] == EMPTY_KEY


class PickyStore(FlakyStore):
    """The real store with one more rule the runner does not know (as PostgreSQL refuses a
    NUL character in text): a batch holding a key with a NUL is refused whole."""

    def log_metrics(self, run_id: str, metrics: list[Any]) -> None:
        if any("\0" in key for key, *_ in metrics):
            raise StoreError("tracking store: A string literal cannot contain NUL characters")
        self.store.log_metrics(run_id, metrics)


def test_a_batch_the_store_refuses_loses_only_the_refused_record(store: Store) -> None:
    run_id = store.create_run(
        NewRun("Default", "main", "true", "local", {}, {}, {"manager": "local"})
    )
    metrics = [_metric("loss", step) for step in range(1000)]
    metrics[617] = _metric("lo\0ss", 617)
    _journal(run_id, *metrics)
    assert ingest(PickyStore(store), run_id, JournalReader(run_id)) == 999  # type: ignore[arg-type]
    assert _losses(store, run_id) == [step for step in range(1000) if step != 617]
    warning = "tracking store: A string literal cannot contain NUL characters"
    assert store.get_run(run_id).tags["runner.ingest_warning"] == warning


def _wait_for_run(store: Store) -> str:
    _wait_until(lambda: bool(store.list_runs().runs), what="the run to be recorded")
    return _only_run(store)


def _wait_until(predicate: Any, *, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited in vain for {what}")
        time.sleep(0.1)
