"""Command line: ``python -m benchmarks [--quick] [--rounds N] [--cases a,b] [--no-mlflow]``."""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import importlib
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from benchmarks import mlflow_env
from benchmarks.cases import MODULES
from benchmarks.harness import (
    DEFAULT_JSON,
    Case,
    CaseResult,
    Plan,
    markdown_table,
    run_case,
    write_json,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 round, no MLflow, cheap cases only")
    p.add_argument("--rounds", type=int, default=5, help="counted rounds (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up rounds (default 1)")
    p.add_argument("--cases", default="", help="comma-separated names or globs (default: all)")
    p.add_argument("--no-mlflow", action="store_true", help="measure runner only")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p.parse_args(argv)


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for name in MODULES:
        cases += importlib.import_module(f"benchmarks.cases.{name}").CASES
    return cases


def select(cases: list[Case], patterns: str, quick: bool) -> list[Case]:
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    if wanted:
        unknown = [p for p in wanted if not any(fnmatch.fnmatch(c.name, p) for c in cases)]
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(unknown)}")
        cases = [c for c in cases if any(fnmatch.fnmatch(c.name, p) for p in wanted)]
    return [c for c in cases if c.quick] if quick else cases


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(rounds=1, warmup=0, with_mlflow=False, quick=True)
    if args.rounds < 1 or args.warmup < 0:
        raise SystemExit("--rounds must be >= 1 and --warmup >= 0")
    return Plan(args.rounds, args.warmup, with_mlflow=not args.no_mlflow, quick=False)


def metadata(plan: Plan, argv: list[str], load_start: float) -> dict[str, Any]:
    """Date, command, machine (with the 1-minute load average before and after), mode."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "benchmarks", *argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        },
        "mlflow_version": mlflow_env.mlflow_version() if plan.with_mlflow else None,
        "rounds": plan.rounds,
        "warmup": plan.warmup,
        "quick": plan.quick,
    }


def compile_runner() -> None:
    """Byte-compile runner's own modules, as installing it does (pip compiles a wheel's files):
    in an editable checkout with PYTHONDONTWRITEBYTECODE=1 every runner process would otherwise
    recompile them, a cost no installed runner pays (MLflow's side is a pip install, compiled)."""
    import compileall

    root = Path(__file__).resolve().parents[1]
    for package in ("runner", "backends"):
        compileall.compile_dir(root / package, quiet=1)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cases = select(all_cases(), args.cases, args.quick)
    if args.list:
        for case in cases:
            print(f"{case.name}: {case.description}")
        return 0
    plan = make_plan(args)
    if plan.with_mlflow and any(c.run_mlflow for c in cases):
        mlflow_env.ensure_mlflow()
    compile_runner()
    load_start = os.getloadavg()[0]
    results: list[CaseResult] = [run_case(case, plan, log) for case in cases]
    print(markdown_table(results))
    write_json(results, metadata(plan, argv, load_start), args.json)
    log(f"[benchmarks] wrote {args.json}")
    failed = [r.name for r in results if r.failed]
    if failed:
        log(f"[benchmarks] errors in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
