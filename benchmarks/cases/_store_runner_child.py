"""Child process for the store cases, runner side: ``python this.py MODE N DB [ARG]``."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cases import _store_bulk as bulk
from runner.status import RunStatus
from runner.store import NewRun, Store
from runner.store.open import open_store

EXPERIMENT = "bench"


def new_run(index: int) -> NewRun:
    return NewRun(
        experiment=EXPERIMENT,
        entry_point="main",
        command="python -c 'print(1)'",
        backend="local",
        parameters={},
        source={"uri": "bench"},
        environment={"manager": "local"},
        run_name=f"run-{index}",
    )


def log(store: Store, n: int, _arg: str) -> float:
    run_id = store.create_run(new_run(0))
    store.start_run(run_id)
    ts = int(time.time() * 1000)
    metrics = [(f"m{i % 10}", float(i), i // 10, ts) for i in range(n)]
    t0 = time.perf_counter()
    store.log_metrics(run_id, metrics)
    return time.perf_counter() - t0


def create(store: Store, n: int, _arg: str) -> float:
    t0 = time.perf_counter()
    for index in range(n):
        store.create_run(new_run(index))
    return time.perf_counter() - t0


def list_all(store: Store, n: int, _arg: str) -> float:
    t0 = time.perf_counter()
    runs = list(store.iter_runs(experiment=EXPERIMENT))
    seconds = time.perf_counter() - t0
    if len(runs) != n:
        raise SystemExit(f"listed {len(runs)} runs, expected {n}")
    return seconds


def page(store: Store, _n: int, status: str) -> float:
    """The newest 20 runs (of one status, if given), as `runner runs list` reads them."""
    t0 = time.perf_counter()
    found = store.list_runs(status=status or None)
    seconds = time.perf_counter() - t0
    if len(found.runs) != 20 or not found.more:
        raise SystemExit(f"listed {len(found.runs)} runs, {found.more} more")
    return seconds


def get(store: Store, _n: int, run_id: str) -> float:
    t0 = time.perf_counter()
    store.get_run(run_id)
    return time.perf_counter() - t0


def template(store: Store) -> str:
    """A finished run with two params, a tag and a metric: what the bulk copies are made of."""
    new = NewRun(**{**vars(new_run(0)), "parameters": {"alpha": "0.5", "epochs": "10"}})
    run_id = store.create_run(new)
    store.set_tags(run_id, {"team": "ml"})
    store.log_metrics(run_id, [("loss", 0.25, 10, int(time.time() * 1000))])
    store.finish_run(run_id, RunStatus.FINISHED, 0, None)
    return run_id


def fill(db: Path, n: int) -> dict[str, Any]:
    """A store of ``n`` runs: one template, then ``n - 1`` copies of it (see _store_bulk)."""
    with open_store(f"sqlite:///{db}") as store:  # type: ignore[attr-defined]
        run_id = template(store)

    def changes(index: int) -> dict[str, Any]:
        start = bulk.start_ms(index, n - 1)
        new_id, status = bulk.run_id_of(index), bulk.status_of(index)
        return {"run_id": new_id, "status": status, "start_time": start, "end_time": start + 500}

    t0 = time.perf_counter()
    with sqlite3.connect(db) as conn:
        bulk.copy_run(conn, "run_id", run_id, n - 1, changes)
    return {"seconds": time.perf_counter() - t0, "middle": bulk.run_id_of(n // 2)}


MODES = {"log": log, "create": create, "list": list_all, "page": page, "get": get}


def main() -> None:
    mode, n, db = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    arg = sys.argv[4] if len(sys.argv) > 4 else ""
    if mode == "fill":
        print(json.dumps(fill(db, n)))
        return
    store = open_store(f"sqlite:///{db}")
    try:
        seconds = MODES[mode](store, n, arg)
    finally:
        store.close()
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
