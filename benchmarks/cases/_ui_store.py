"""Fill a runner store for the web UI cases: N runs with varied params and metrics, and one run
with a long metric history (runner's API for the template, row copies for the rest)."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from benchmarks.cases import _store_bulk as bulk
from runner.store import NewRun

EXPERIMENT = "bench-ui"


def fill(db: Path, runs: int, points: int) -> str:
    """``runs`` runs in ``db`` plus one run with ``points`` loss values; returns that run's id."""
    from runner.store.open import open_store

    store = open_store(f"sqlite:///{db}")
    template = store.create_run(_new_run("template"))
    store.start_run(template)
    store.log_metrics(template, [("loss", 0.5, 0, 0), ("accuracy", 0.5, 0, 0)])
    store.finish_run(template, "FINISHED", 0, None)  # type: ignore[arg-type]
    long = store.create_run(_new_run("long"))
    store.start_run(long)
    start = int(time.time() * 1000)
    history = [("loss", 2.0 / (1 + step / 100), step, start + step * 10) for step in range(points)]
    store.log_metrics(long, history)
    store.finish_run(long, "FINISHED", 0, None)  # type: ignore[arg-type]
    store.close()
    _copies(db, template, runs - 1)
    return long


def _new_run(name: str) -> NewRun:
    return NewRun(
        experiment=EXPERIMENT,
        entry_point="train",
        command="python train.py --alpha 0.5 --layers 3",
        backend="local",
        parameters={"alpha": "0.5", "layers": "3"},
        source={"uri": "https://example.invalid/model.git", "commit": "ab" * 20, "dirty": False},
        environment={"manager": "uv", "key": "9f" * 32, "python": "3.11.7"},
        run_name=name,
        tags={"team": "vision"},
    )


def _copies(db: Path, template: str, count: int) -> None:
    def changes(index: int) -> dict[str, object]:
        begun = bulk.start_ms(index, count) - 10_000
        status = bulk.status_of(index)
        return {"run_id": bulk.run_id_of(index), "status": status, "start_time": begun,
                "end_time": begun + 500, "run_name": f"run-{index}"}  # fmt: skip

    with sqlite3.connect(db) as conn:
        bulk.copy_run(conn, "run_id", template, count, changes)
        # copies differ in what a table sorts by: values drawn once, reproducibly
        draw = random.Random(7)
        ids = [bulk.run_id_of(index) for index in range(count)]
        conn.executemany(
            "UPDATE latest_metrics SET value = ? WHERE run_id = ? AND key = 'loss'",
            [(draw.random(), run_id) for run_id in ids],
        )
        conn.executemany(
            "UPDATE params SET value = ? WHERE run_id = ? AND key = 'alpha'",
            [(str(draw.randrange(100) / 100), run_id) for run_id in ids],
        )
