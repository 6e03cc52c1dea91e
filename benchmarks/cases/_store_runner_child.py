"""Child process for the store cases, runner side: ``python this.py {log|create|list} N DB``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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


def log(store: Store, n: int) -> float:
    run_id = store.create_run(new_run(0))
    store.start_run(run_id)
    ts = int(time.time() * 1000)
    metrics = [(f"m{i % 10}", float(i), i // 10, ts) for i in range(n)]
    t0 = time.perf_counter()
    store.log_metrics(run_id, metrics)
    return time.perf_counter() - t0


def create(store: Store, n: int) -> float:
    t0 = time.perf_counter()
    for index in range(n):
        store.create_run(new_run(index))
    return time.perf_counter() - t0


def list_all(store: Store, n: int) -> float:
    t0 = time.perf_counter()
    runs = store.list_runs(experiment=EXPERIMENT)
    seconds = time.perf_counter() - t0
    if len(runs) != n:
        raise SystemExit(f"listed {len(runs)} runs, expected {n}")
    return seconds


def main() -> None:
    mode, n, db = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    store = open_store(f"sqlite:///{db}")
    try:
        seconds = {"log": log, "create": create, "list": list_all}[mode](store, n)
    finally:
        store.close()
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
