"""server-*: `runner server` vs `mlflow server` on SQLite, driven by one HTTP client (this process).

Both servers get the same client: keep-alive ``http.client`` requests sent one after the other,
so what differs is the server's own work per request (parsing, validation, the store).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import mlflow_env
from benchmarks.cases import _common as c
from benchmarks.cases.store_metrics import MLFLOW_CHILD, RUNNER_CHILD
from benchmarks.harness import Case, Context, Measurement, NotAvailable

BATCH = 1000  # metrics per request: MLflow's log-batch maximum
LOG_N, LOG_QUICK_N = 100_000, 10_000
RUNS_N, RUNS_QUICK_N = 10_000, 1_000
SEARCHES = 30  # timed searches per round
GROUPS = 100  # distinct values of the searched param
PAGE = 50


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def available() -> str | None:
    return c.cli_reason("server")


class Client:
    """One keep-alive connection; ``post`` returns (JSON answer, seconds taken)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: Any) -> tuple[Any, float]:
        data = json.dumps(body).encode()
        t0 = time.perf_counter()
        self.conn.request("POST", path, data, {"Content-Type": "application/json"})
        answer = self.conn.getresponse()
        payload = answer.read()
        seconds = time.perf_counter() - t0
        if answer.status >= 300:
            raise c.BenchError(f"POST {path}: HTTP {answer.status}: {payload[:300]!r}")
        return (json.loads(payload) if payload else None), seconds

    def get(self, path: str) -> Any:
        self.conn.request("GET", path)
        answer = self.conn.getresponse()
        return json.loads(answer.read())


def _wait_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise c.BenchError(f"the server exited: {log.read_text()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise c.BenchError("the server did not start in 120 s")


@contextmanager
def runner_server(folder: Path, db: Path) -> Iterator[Client]:
    port = _free_port()
    env = c.runner_env(folder / "home", RUNNER_TRACKING_URI=f"sqlite:///{db}")
    argv = [*c.runner_cmd(), "server", "--port", str(port)]
    with _serving(argv, env, folder, port) as client:
        yield client


@contextmanager
def mlflow_server(folder: Path, db: Path) -> Iterator[Client]:
    port = _free_port()
    env = c.mlflow_run_env(db, folder / "envs")
    argv = [
        str(mlflow_env.venv_bin("mlflow")), "server", "--backend-store-uri", f"sqlite:///{db}",
        "--default-artifact-root", str(folder / "mlruns"), "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with _serving(argv, env, folder, port) as client:
        yield client


@contextmanager
def _serving(argv: list[str], env: dict[str, str], folder: Path, port: int) -> Iterator[Client]:
    log = folder / f"server-{port}.log"
    process = c.start(argv, env, log, folder)
    try:
        _wait_up(port, process, log)
        yield Client(port)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _latencies(seconds: list[float], total: float, items: int) -> Measurement:
    ordered = sorted(seconds)
    return Measurement(
        total,
        extra={
            "per_s": items / total,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        },
    )


def _metric_batches(n: int) -> Iterator[list[dict[str, Any]]]:
    ts = int(time.time() * 1000)
    for start in range(0, n, BATCH):
        yield [
            {"key": f"m{i % 10}", "value": float(i), "timestamp": ts, "step": i // 10}
            for i in range(start, min(n, start + BATCH))
        ]


Body = Callable[[str, list[dict[str, Any]]], dict[str, Any]]


def _log(
    ctx: Context, serve: Callable[..., Any], create: Callable[[Client], str], path: str, body: Body
) -> Measurement:
    folder = c.fresh_dir(ctx.scratch, "log-")
    n = LOG_QUICK_N if ctx.quick else LOG_N
    try:
        with serve(folder, folder / "store.db") as client:
            run_id = create(client)
            batches = list(_metric_batches(n))
            t0 = time.perf_counter()
            url = path.format(run_id=run_id)
            latencies = [client.post(url, body(run_id, batch))[1] for batch in batches]
            total = time.perf_counter() - t0
        return _latencies(latencies, total, n)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _runner_body(_run_id: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metrics": batch, "key": uuid.uuid4().hex}  # a client key, as RestStore sends


def _mlflow_body(run_id: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    return {"run_id": run_id, "metrics": batch}


def _runner_create(client: Client) -> str:
    return str(client.post("/api/runs", {"experiment": "bench"})[0]["run_id"])


def _mlflow_create(client: Client) -> str:
    experiment = client.post("/api/2.0/mlflow/experiments/create", {"name": "bench"})[0]
    answer = client.post(
        "/api/2.0/mlflow/runs/create", {"experiment_id": experiment["experiment_id"]}
    )[0]
    return str(answer["run"]["info"]["run_id"])


def log_runner(ctx: Context) -> Measurement:
    return _log(ctx, runner_server, _runner_create, "/api/runs/{run_id}/batch", _runner_body)


def log_mlflow(ctx: Context) -> Measurement:
    path = "/api/2.0/mlflow/runs/log-batch"
    return _log(ctx, mlflow_server, _mlflow_create, path, _mlflow_body)


# -- searching 10k runs with a filter -----------------------------------------------------


def _group_of(column: str) -> str:
    """SQL for a group 0..GROUPS-1 from the last two hex digits of a run id column."""
    digit = "(instr('0123456789abcdef', substr({column}, {at}, 1)) - 1)"
    high, low = digit.format(column=column, at=-2), digit.format(column=column, at=-1)
    return f"CAST(({high} * 16 + {low}) % {GROUPS} AS TEXT)"


def _filled(ctx: Context, tool: str, python: str, child: Path, column: str) -> Path:
    """A store of N runs (each tool's own rows, copied), whose param alpha takes GROUPS values."""
    n = RUNS_QUICK_N if ctx.quick else RUNS_N
    db = ctx.scratch / f"{tool}-search.db"
    env = c.runner_env(ctx.scratch / "home")
    c.child_json(python, child, ["fill", str(n), str(db)], env, ctx.scratch)
    with sqlite3.connect(db) as conn:  # the copies share the template's value: spread them
        conn.execute(f"UPDATE params SET value = {_group_of(column)} WHERE key = 'alpha'")
    return db


def prepare_search_runner(ctx: Context) -> None:
    ctx.state["runner_db"] = _filled(ctx, "runner", sys.executable, RUNNER_CHILD, "run_id")


def prepare_search_mlflow(ctx: Context) -> None:
    python = str(mlflow_env.venv_bin("python"))
    ctx.state["mlflow_db"] = _filled(ctx, "mlflow", python, MLFLOW_CHILD, "run_uuid")


Query = Callable[[Client, int], float]


def _search(ctx: Context, serve: Callable[..., Any], db: Path, query: Query) -> Measurement:
    folder = c.fresh_dir(ctx.scratch, "search-")
    try:
        with serve(folder, db) as client:
            query(client, 0)  # the first query opens caches on both sides: untimed
            latencies = [query(client, 1 + index % (GROUPS - 1)) for index in range(SEARCHES)]
        return _latencies(latencies, sum(latencies), SEARCHES)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _runner_query(client: Client, group: int) -> float:
    body = {"params": {"alpha": str(group)}, "status": "FINISHED", "limit": PAGE}
    answer, seconds = client.post("/api/runs/search", body)
    _check(len(answer["runs"]), group)
    return seconds


def _mlflow_query(client: Client, group: int) -> float:
    if not hasattr(client, "experiment_id"):
        found = client.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=bench")
        client.experiment_id = found["experiment"]["experiment_id"]  # type: ignore[attr-defined]
    body = {
        "experiment_ids": [client.experiment_id],  # type: ignore[attr-defined]
        "filter": f"params.alpha = '{group}' and attributes.status = 'FINISHED'",
        "max_results": PAGE,
    }
    answer, seconds = client.post("/api/2.0/mlflow/runs/search", body)
    _check(len(answer.get("runs", [])), group)
    return seconds


def _check(found: int, group: int) -> None:
    if found == 0:
        raise c.BenchError(f"the search for alpha={group} found no run")


def search_runner(ctx: Context) -> Measurement:
    return _search(ctx, runner_server, ctx.state["runner_db"], _runner_query)


def search_mlflow(ctx: Context) -> Measurement:
    if "mlflow_db" not in ctx.state:
        raise NotAvailable("not available: the MLflow store was not prepared")
    return _search(ctx, mlflow_server, ctx.state["mlflow_db"], _mlflow_query)


CASES = [
    Case(
        name="server-log-100k-metrics",
        description=(
            "log N metrics through a fresh server on SQLite in batches of 1000 (MLflow's "
            "maximum), one request after another on one keep-alive connection: `runner server` "
            "POST /api/runs/<id>/batch vs `mlflow server --workers 1` POST "
            "/api/2.0/mlflow/runs/log-batch; times the requests only (per_s = metrics/s, p50/p99 "
            "= latency of one batch)"
        ),
        available=available,
        run_runner=log_runner,
        run_mlflow=log_mlflow,
        mlflow_available=c.mlflow_reason,
        quick=True,
        params=lambda quick: f"N={LOG_QUICK_N if quick else LOG_N}",
    ),
    Case(
        name="server-search-10k-runs",
        description=(
            f"{SEARCHES} searches of N runs on SQLite (each tool's own rows, param alpha in "
            f"{GROUPS} groups) with a filter `alpha = <group> and status = FINISHED`, first "
            f"{PAGE}: runner POST /api/runs/search vs MLflow POST /api/2.0/mlflow/runs/search; "
            "times the requests (seconds = all searches; p50/p99 = one search)"
        ),
        available=available,
        run_runner=search_runner,
        run_mlflow=search_mlflow,
        mlflow_available=c.mlflow_reason,
        prepare_runner=prepare_search_runner,
        prepare_mlflow=prepare_search_mlflow,
        quick=True,
        params=lambda quick: f"N={RUNS_QUICK_N if quick else RUNS_N}",
    ),
]
