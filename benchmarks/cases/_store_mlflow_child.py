"""Child process for the store cases, MLflow side (its venv): ``python this.py MODE N DB``."""

from __future__ import annotations

import json
import sys
import time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

EXPERIMENT = "bench"
BATCH = 1000  # the most metrics MLflow accepts in one log_batch call


def experiment_id(client: MlflowClient) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    return str(found.experiment_id if found else client.create_experiment(EXPERIMENT))


def log(client: MlflowClient, n: int) -> float:
    run_id = client.create_run(experiment_id(client)).info.run_id
    ts = int(time.time() * 1000)
    metrics = [Metric(f"m{i % 10}", float(i), ts, i // 10) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    return time.perf_counter() - t0


def create(client: MlflowClient, n: int) -> float:
    exp = experiment_id(client)
    t0 = time.perf_counter()
    for index in range(n):
        client.create_run(exp, run_name=f"run-{index}")
    return time.perf_counter() - t0


def list_all(client: MlflowClient, n: int) -> float:
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


def main() -> None:
    mode, n, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    seconds = {"log": log, "create": create, "list": list_all}[mode](client, n)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
