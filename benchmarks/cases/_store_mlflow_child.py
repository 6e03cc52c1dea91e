"""Child process for the store cases, MLflow side (its venv): ``python this.py MODE N DB [ARG]``."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from benchmarks.cases import _store_bulk as bulk

EXPERIMENT = "bench"
BATCH = 1000  # the most metrics MLflow accepts in one log_batch call
PAGE = 20  # runs per page, as `runner runs list` shows them


def experiment_id(client: MlflowClient) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    return str(found.experiment_id if found else client.create_experiment(EXPERIMENT))


def log(client: MlflowClient, n: int, _arg: str) -> float:
    run_id = client.create_run(experiment_id(client)).info.run_id
    ts = int(time.time() * 1000)
    metrics = [Metric(f"m{i % 10}", float(i), ts, i // 10) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    return time.perf_counter() - t0


def create(client: MlflowClient, n: int, _arg: str) -> float:
    exp = experiment_id(client)
    t0 = time.perf_counter()
    for index in range(n):
        client.create_run(exp, run_name=f"run-{index}")
    return time.perf_counter() - t0


def list_all(client: MlflowClient, n: int, _arg: str) -> float:
    exp = experiment_id(client)
    t0 = time.perf_counter()
    runs, token = [], None
    while True:
        page = client.search_runs([exp], max_results=BATCH, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    seconds = time.perf_counter() - t0
    if len(runs) != n:
        raise SystemExit(f"listed {len(runs)} runs, expected {n}")
    return seconds


def search(client: MlflowClient, _n: int, status: str) -> float:
    """The newest 20 runs (of one status, if given): `search_runs` as MLflow's UI calls it."""
    exp = experiment_id(client)
    query = f"attributes.status = '{status}'" if status else ""
    t0 = time.perf_counter()
    page = client.search_runs([exp], filter_string=query, max_results=PAGE)
    seconds = time.perf_counter() - t0
    if len(page) != PAGE or not page.token:
        raise SystemExit(f"searched {len(page)} runs, token {page.token!r}")
    return seconds


def get(client: MlflowClient, _n: int, run_id: str) -> float:
    experiment_id(client)  # opens the store, as the other modes do before timing
    t0 = time.perf_counter()
    client.get_run(run_id)
    return time.perf_counter() - t0


def fill(db: str, n: int) -> dict[str, Any]:
    """A store of ``n`` runs: one made through MLflow's API, then ``n - 1`` copies of its rows."""
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    run = client.create_run(experiment_id(client), run_name="run", tags={"team": "ml"})
    run_id, uri = run.info.run_id, run.info.artifact_uri
    params = [Param("alpha", "0.5"), Param("epochs", "10")]
    client.log_batch(
        run_id, metrics=[Metric("loss", 0.25, int(time.time() * 1000), 10)], params=params
    )
    client.set_terminated(run_id, "FINISHED")

    def changes(index: int) -> dict[str, Any]:
        start, new_id = bulk.start_ms(index, n - 1), bulk.run_id_of(index)
        return {
            "run_uuid": new_id,
            "status": bulk.status_of(index),
            "start_time": start,
            "end_time": start + 500,
            "artifact_uri": uri.replace(run_id, new_id),
        }

    t0 = time.perf_counter()
    with sqlite3.connect(db) as conn:
        bulk.copy_run(conn, "run_uuid", run_id, n - 1, changes)
    return {"seconds": time.perf_counter() - t0, "middle": bulk.run_id_of(n // 2)}


MODES = {"log": log, "create": create, "list": list_all, "search": search, "get": get}


def main() -> None:
    mode, n, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    arg = sys.argv[4] if len(sys.argv) > 4 else ""
    if mode == "fill":
        print(json.dumps(fill(db, n)))
        return
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    seconds = MODES[mode](client, n, arg)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
