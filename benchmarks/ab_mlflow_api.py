"""A/B: `runner run benchmarks/projects/trivial --env-manager local -q` with and without
`--mlflow-api`, alternating rounds on one checkout; wall time and CPU time (user + sys of the
runner and its children, less sensitive than wall time on a busy machine).

usage: python benchmarks/ab_mlflow_api.py [ROUNDS]
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
VARIANTS = {"plain": (), "mlflow-api": ("--mlflow-api",)}


def once(home: str, extra: tuple[str, ...]) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "MLFLOW_"))}
    env.update(RUNNER_HOME=home, PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "runner", "run", str(PROJECT), "--env-manager", "local", "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*argv, *extra], env=env, cwd=home, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(rounds: int) -> None:
    home = tempfile.mkdtemp(prefix="ab-mlflow-api-")
    for extra in VARIANTS.values():  # warm-up: the schema, the OS caches
        once(home, extra)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, extra in VARIANTS.items():
            samples[name].append(once(home, extra))
    for name, found in samples.items():
        walls, cpus = [w for w, _ in found], [c for _, c in found]
        print(
            f"{name}: wall median {statistics.median(walls):.3f} s, min {min(walls):.3f} s; "
            f"cpu median {statistics.median(cpus):.3f} s, min {min(cpus):.3f} s"
        )
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
