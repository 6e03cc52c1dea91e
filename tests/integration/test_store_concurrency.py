"""Processes and threads on one fresh SQLite store: nothing lost, nothing locked, one migration."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from runner.status import RunStatus
from runner.store import NewRun, Store
from runner.store.open import open_store

RUNS_PER_WORKER = 20
METRICS_PER_RUN = 50
IMPLS = ("sqlite3", "sqlalchemy")

# Each worker imports everything, says it is ready, then waits for "go" so that all of them
# open the brand-new database at the same moment.
WORKER = textwrap.dedent(
    """
    import importlib, json, os, sys, time
    from pathlib import Path
    from runner.status import RunStatus
    from runner.store import NewRun
    from runner.store.open import open_store
    sqlalchemy = os.environ["RUNNER_STORE_IMPL"] == "sqlalchemy"
    importlib.import_module("runner.store.sql" if sqlalchemy else "runner.store.sqlite")

    uri, work, index = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    runs, metrics = int(sys.argv[4]), int(sys.argv[5])
    (work / f"ready-{index}").touch()
    while not (work / "go").exists():
        time.sleep(0.002)
    store = open_store(uri)
    migrated = "alembic" in sys.modules
    ids = []
    for n in range(runs):
        new = NewRun("shared", "main", "true", "local", {"n": str(n)}, {}, {"manager": "local"},
                     tags={"worker": index})
        run_id = store.create_run(new)
        store.start_run(run_id)
        store.log_metrics(run_id, [("loss", 1.0 / (s + 1), s, s) for s in range(metrics)])
        store.heartbeat(run_id)
        assert store.finish_run(run_id, RunStatus.FINISHED, 0, None)
        ids.append(run_id)
    store.close()
    print(json.dumps({"ids": ids, "migrated": migrated, "sqlalchemy": "sqlalchemy" in sys.modules}))
    """
)


def new_run() -> NewRun:
    return NewRun("e", "main", "true", "local", {}, {}, {"manager": "local"})


def impl_env(impl: str) -> dict[str, str]:
    return {**os.environ, "RUNNER_STORE_IMPL": "sqlalchemy" if impl == "sqlalchemy" else "auto"}


def start_workers(uri: str, work: Path, count: int, impl: str) -> list[subprocess.Popen[str]]:
    argv = [str(RUNS_PER_WORKER), str(METRICS_PER_RUN)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, str(work), str(index), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=impl_env(impl),
        )
        for index in range(count)
    ]
    deadline = time.monotonic() + 60
    while len(list(work.glob("ready-*"))) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    (work / "go").touch()
    return workers


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("count", [8, pytest.param(16, marks=pytest.mark.slow)])
def test_processes_share_a_fresh_store(tmp_path: Path, impl: str, count: int) -> None:
    db = tmp_path / "shared.db"
    outputs = []
    for worker in start_workers(f"sqlite:///{db}", tmp_path, count, impl):
        stdout, stderr = worker.communicate(timeout=180)
        assert worker.returncode == 0, stderr
        assert "locked" not in stderr
        outputs.append(json.loads(stdout))
    assert sum(output["migrated"] for output in outputs) == 1  # alembic ran exactly once
    if impl == "sqlite3":  # the others waited for the migration without importing SQLAlchemy
        assert sum(output["sqlalchemy"] for output in outputs) == 1
    ids = {run_id for output in outputs for run_id in output["ids"]}
    assert len(ids) == count * RUNS_PER_WORKER
    with open_store(f"sqlite:///{db}") as store:  # type: ignore[attr-defined]
        runs = list(store.iter_runs(experiment="shared"))
    assert {run.run_id for run in runs} == ids
    assert {run.status for run in runs} == {"FINISHED"}
    assert {run.metrics["loss"] for run in runs} == {1.0 / METRICS_PER_RUN}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (
            count * RUNS_PER_WORKER * METRICS_PER_RUN,
        )
        assert conn.execute("SELECT count(*) FROM experiments").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def open_with(impl: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("RUNNER_STORE_IMPL", "sqlalchemy" if impl == "sqlalchemy" else "auto")
    return open_store(f"sqlite:///{path}")


@pytest.mark.parametrize("impl", IMPLS)
def test_first_terminal_write_wins(
    tmp_path: Path, impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = [open_with(impl, tmp_path / "race.db", monkeypatch) for _ in range(2)]
    finals = (RunStatus.FINISHED, RunStatus.FAILED)
    for _ in range(25):
        run_id = stores[0].create_run(new_run())
        barrier, won = threading.Barrier(2), {}

        def finish(
            index: int, run_id: str, barrier: threading.Barrier, won: dict[int, bool]
        ) -> None:
            barrier.wait()
            won[index] = stores[index].finish_run(run_id, finals[index], index, "race")

        threads = [
            threading.Thread(target=finish, args=(index, run_id, barrier, won))
            for index in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(won.values()) == [False, True]
        winner = next(index for index, result in won.items() if result)
        run = stores[1 - winner].get_run(run_id)
        assert (run.status, run.exit_code) == (finals[winner].value, winner)
    for store in stores:
        store.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_long_reader_does_not_block_writers(
    tmp_path: Path, impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_with(impl, tmp_path / "wal.db", monkeypatch)
    store.create_run(new_run())
    reader = sqlite3.connect(tmp_path / "wal.db", isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    run_id = store.create_run(new_run())
    store.log_metrics(run_id, [("m", 1.0, 0, 0)])
    assert store.finish_run(run_id, RunStatus.FINISHED, 0, None)
    assert reader.execute("SELECT count(*) FROM runs").fetchone() == (1,)  # its snapshot
    reader.execute("COMMIT")
    assert len(store.list_runs().runs) == 2
    reader.close()
    store.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_threads_share_one_store(
    tmp_path: Path, impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_with(impl, tmp_path / "threads.db", monkeypatch)
    run_id = store.create_run(new_run())

    def log(index: int) -> None:
        for step in range(50):
            store.log_metrics(run_id, [(f"t{index}", float(step), step, step)])
            store.heartbeat(run_id)

    threads = [threading.Thread(target=log, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_run(run_id).metrics == {f"t{index}": 49.0 for index in range(6)}
    store.close()
    with sqlite3.connect(tmp_path / "threads.db") as conn:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (300,)


@pytest.mark.parametrize("impl", IMPLS)
def test_one_claim_wins_across_stores(
    tmp_path: Path, impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = [open_with(impl, tmp_path / "claims.db", monkeypatch) for _ in range(6)]
    barrier, won = threading.Barrier(len(stores)), []

    def claim(store: Store) -> None:
        barrier.wait()
        won.append(store.claim_interval("batch", 3600))

    threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 5 + [True]
    for store in stores:
        store.close()
