"""concurrent-8-runs: 8 simultaneous runs of the trivial project on one store, total wall time."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.cases import _common as c
from benchmarks.cases.cli_overhead import PROJECT
from benchmarks.cases.cli_overhead import available as cli_available
from benchmarks.harness import Case, Context, Measurement

PARALLEL = 8


def _runner_argv() -> list[str]:
    return c.runner_run(PROJECT, "--env-manager", "local")


def _mlflow_argv() -> list[str]:
    return c.mlflow_run(PROJECT, "--env-manager", "local")


def _runner_env(ctx: Context) -> dict[str, str]:
    return c.runner_env(ctx.scratch / "runner-home")


def _mlflow_env(ctx: Context) -> dict[str, str]:
    return c.mlflow_run_env(ctx.scratch / "mlflow.db", ctx.scratch / "mlflow-envs")


def run_all(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> tuple[float, list[str]]:
    """Start PARALLEL copies at once; wall time until the last exits, and the failures."""
    with tempfile.TemporaryDirectory(prefix="bench-par-") as tmp:
        logs = [Path(tmp) / f"{i}.log" for i in range(PARALLEL)]
        t0 = time.perf_counter()
        procs = [c.start(argv, env, log, cwd) for log in logs]
        failures: list[str] = []
        for proc, log in zip(procs, logs, strict=True):
            try:
                c.finish(proc, log)
            except c.BenchError as exc:
                failures.append(str(exc))
        return time.perf_counter() - t0, failures


def run_runner(ctx: Context) -> Measurement:
    seconds, failures = run_all(_runner_argv(), _runner_env(ctx), ctx.scratch)
    if failures:
        raise c.BenchError(f"{len(failures)}/{PARALLEL} runner runs failed: {failures[0]}")
    return Measurement(seconds)


def run_mlflow(ctx: Context) -> Measurement:
    seconds, failures = run_all(_mlflow_argv(), _mlflow_env(ctx), ctx.scratch)
    note = f"{len(failures)}/{PARALLEL} failed in a round, e.g. {failures[0]}" if failures else None
    return Measurement(seconds, {"failed_runs": float(len(failures))}, note)


def prepare_runner(ctx: Context) -> None:
    c.timed(_runner_argv(), _runner_env(ctx), ctx.scratch)


def prepare_mlflow(ctx: Context) -> None:
    c.timed(_mlflow_argv(), _mlflow_env(ctx), ctx.scratch)


CASES = [
    Case(
        name="concurrent-8-runs",
        description=(
            f"{PARALLEL} simultaneous `runner run benchmarks/projects/trivial --env-manager local` "
            "processes on one store (created by an untimed run first) vs the same with "
            "`mlflow run`; wall time until all have exited"
        ),
        available=cli_available,
        run_runner=run_runner,
        run_mlflow=run_mlflow,
        mlflow_available=c.mlflow_reason,
        prepare_runner=prepare_runner,
        prepare_mlflow=prepare_mlflow,
    )
]
