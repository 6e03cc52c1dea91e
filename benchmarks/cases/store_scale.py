"""scale-*: runner commands on stores of 1k to 1M runs (made untimed, cached), beside MLflow."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import mlflow_env
from benchmarks.cases import _common as c
from benchmarks.cases.store_metrics import MLFLOW_CHILD, RUNNER_CHILD
from benchmarks.harness import Case, Context, Measurement

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
STORES = c.WORK / "stores"
MIGRATIONS = c.REPO / "runner" / "store" / "migrations" / "versions"
BULK_VERSION = 1  # bump when _store_bulk fills stores differently: cached ones are remade
PROJECT = c.PROJECTS / "trivial"


@dataclass(frozen=True)
class Command:
    """One kind of row: a runner command, its store call alone, and MLflow's equivalent call."""

    name: str
    what: str
    argv: Callable[[str], list[str]]  # the middle run's id -> runner arguments
    api: str | None = None  # runner child mode timed as ``api_ms``; None: not timed alone
    mlflow: str | None = None  # MLflow child mode; None: runner only
    status: str = ""  # the status the listing modes filter on
    writes: bool = False  # the command adds runs: it gets its own copy of the store


def _show_args(run_id: str) -> list[str]:
    return ["runs", "show", run_id[:12]]


COMMANDS = (
    Command(
        "run",
        "`runner run benchmarks/projects/trivial --env-manager local`",
        lambda _id: ["run", str(PROJECT), "--env-manager", "local"],
        writes=True,
    ),
    Command("list", "`runner runs list`", lambda _id: ["runs", "list"], "page", "search"),
    Command(
        "failed",
        "`runner runs list --status failed`",
        lambda _id: ["runs", "list", "--status", "failed"],
        "page",
        "search",
        status="FAILED",
    ),
    Command("show", "`runner runs show ID`", _show_args, "get", "get"),
)


def _schema_key() -> str:
    """The newest migration: a store made before it is remade, not migrated in the cache."""
    return sorted(path.stem.split("_")[0] for path in MIGRATIONS.glob("r[0-9]*.py"))[-1]


def _filled(kind: str, python: str, child: Path, n: int) -> tuple[Path, str]:
    """The cached store of ``n`` runs (made on first use) and its middle run's id."""
    version = _schema_key() if kind == "runner" else mlflow_env.mlflow_version()
    db = STORES / f"{kind}-{version}-bulk{BULK_VERSION}-{n}-runs.db"
    meta = db.with_suffix(".json")
    if not meta.is_file():
        STORES.mkdir(parents=True, exist_ok=True)
        partial_db = db.with_suffix(".partial")
        partial_db.unlink(missing_ok=True)
        env = c.runner_env(STORES / "home")
        made = c.child_json(python, child, ["fill", str(n), str(partial_db)], env, STORES)
        partial_db.replace(db)
        Path(f"{partial_db}.lock").unlink(missing_ok=True)  # runner's migration lock
        meta.write_text(json.dumps({"middle": made["middle"], "fill_seconds": made["seconds"]}))
    return db, json.loads(meta.read_text())["middle"]


def prepare_runner(command: Command, n: int, ctx: Context) -> None:
    db, middle = _filled("runner", sys.executable, RUNNER_CHILD, n)
    if command.writes:
        copy = ctx.scratch / "home" / "runner.db"
        copy.parent.mkdir()
        db = Path(shutil.copyfile(db, copy))
    uri = {"RUNNER_TRACKING_URI": f"sqlite:///{db}"}
    ctx.state.update(db=db, middle=middle, env=c.runner_env(ctx.scratch / "home", **uri))


def prepare_mlflow(n: int, ctx: Context) -> None:
    db, middle = _filled("mlflow", _mlflow_python(), MLFLOW_CHILD, n)
    ctx.state.update(mlflow_db=db, middle=middle)


def _mlflow_python() -> str:
    return str(mlflow_env.venv_bin("python"))


def _api_ms(mode: str, command: Command, ctx: Context) -> float:
    """Runner's store call alone, in a fresh process that opened the store untimed."""
    arg = ctx.state["middle"] if mode == "get" else command.status
    args = [mode, "0", str(ctx.state["db"]), arg]
    env = c.runner_env(ctx.scratch / "child-home")
    found = c.child_json(sys.executable, RUNNER_CHILD, args, env, ctx.scratch)
    return float(found["seconds"]) * 1000


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[Measurement, str]:
    """Wall time of one process and its output, with its CPU time (``cpu_ms``, children included:
    on this shared machine it shows a growth that wall time hides in noise) and peak RSS."""
    log = cwd / "out.log"
    t0 = time.perf_counter()
    proc = c.start(argv, env, log, cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds, output = time.perf_counter() - t0, log.read_text()
    if code := os.waitstatus_to_exitcode(status):
        raise c.BenchError(f"{Path(argv[0]).name} exited {code}: {output[-300:]}")
    cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000
    return Measurement(seconds, {"cpu_ms": cpu_ms, "peak_rss_mb": usage.ru_maxrss / 1024}), output


def run_runner(command: Command, ctx: Context) -> Measurement:
    argv = [*c.runner_cmd(), *command.argv(ctx.state["middle"])]
    timed, _ = _timed(argv, ctx.state["env"], ctx.scratch)
    extra = dict(timed.extra)
    if command.api:
        extra["api_ms"] = _api_ms(command.api, command, ctx)
    return Measurement(timed.seconds, extra)


def run_mlflow(command: Command, ctx: Context) -> Measurement:
    """A fresh MLflow process doing the same: wall and CPU time, and the call alone (``api_ms``)."""
    assert command.mlflow is not None
    arg = ctx.state["middle"] if command.mlflow == "get" else command.status
    args = [command.mlflow, "0", str(ctx.state["mlflow_db"]), arg]
    argv = [_mlflow_python(), "-P", str(MLFLOW_CHILD), *args]
    timed, output = _timed(argv, c.runner_env(ctx.scratch / "child-home"), ctx.scratch)
    api_ms = json.loads(output.strip().splitlines()[-1])["seconds"] * 1000
    return Measurement(timed.seconds, {"cpu_ms": timed.extra["cpu_ms"], "api_ms": api_ms})


def available() -> str | None:
    return c.cli_reason("runs", "list")


def _case(command: Command, label: str, n: int) -> Case:
    mlflow: dict[str, Any] = {}
    if command.mlflow:
        mlflow = {
            "run_mlflow": partial(run_mlflow, command),
            "mlflow_available": c.mlflow_reason,
            "prepare_mlflow": partial(prepare_mlflow, n),
        }
    return Case(
        name=f"scale-{command.name}-{label}",
        description=(
            f"{command.what} on a store of N runs (made once, untimed, by copying rows the tool "
            "wrote; cached in benchmarks/.work/stores): wall time of the whole process; "
            "`api_ms` is the store call alone in a fresh process (runner Store.list_runs / "
            "get_run, MLflow search_runs(max_results=20) / get_run)"
        ),
        available=available,
        run_runner=partial(run_runner, command),
        prepare_runner=partial(prepare_runner, command, n),
        quick=command.name == "list" and n == SIZES["1k"],
        params=lambda _quick: f"N={n:,}",
        **mlflow,
    )


CASES = [_case(command, label, n) for command in COMMANDS for label, n in SIZES.items()]
