"""A/B: `runner run benchmarks/projects/trivial --env-manager local -q` with and without
`--mlflow-api`, alternating rounds on one checkout; wall time and CPU time (user + sys of the
runner and its children, less sensitive than wall time on a busy machine).

usage: python benchmarks/ab_mlflow_api.py [ROUNDS [OLD_CHECKOUT]]; with OLD_CHECKOUT (a copy of
the tree before the MLflow API, e.g. `git archive`), its plain run alternates too.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "benchmarks" / "projects" / "trivial"
Variant = tuple[str, tuple[str, ...]]  # (checkout on PYTHONPATH, extra arguments)


def once(home: str, variant: Variant) -> tuple[float, float]:
    checkout, extra = variant
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "MLFLOW_"))}
    env.update(RUNNER_HOME=home, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=checkout)
    argv = [sys.executable, "-m", "runner", "run", str(PROJECT), "--env-manager", "local", "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*argv, *extra], env=env, cwd=home, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(rounds: int, old: str | None) -> None:
    variants: dict[str, Variant] = {
        "plain": (str(REPO), ()),
        "mlflow-api": (str(REPO), ("--mlflow-api",)),
    }
    if old:
        variants["before (plain)"] = (old, ())
    homes = {name: tempfile.mkdtemp(prefix="ab-mlflow-api-") for name in variants}
    for name, variant in variants.items():  # warm-up: the schema, the OS caches
        once(homes[name], variant)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, variant in variants.items():
            samples[name].append(once(homes[name], variant))
    for name, found in samples.items():
        walls, cpus = [w for w, _ in found], [c for _, c in found]
        print(
            f"{name}: wall median {statistics.median(walls):.3f} s, min {min(walls):.3f} s; "
            f"cpu median {statistics.median(cpus):.3f} s, min {min(cpus):.3f} s"
        )
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, sys.argv[2] if len(sys.argv) > 2 else None)
