"""A/B start-up: `runner run benchmarks/projects/trivial --env-manager local -q` for two
checkouts, alternating rounds (usage: python benchmarks/ab_startup.py OLD_CHECKOUT [ROUNDS])."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "benchmarks" / "projects" / "trivial"


def once(checkout: str, home: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "PYTHONPATH"))}
    env.update(RUNNER_HOME=home, PYTHONPATH=checkout)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    argv = [sys.executable, "-m", "runner", "run", str(PROJECT), "--env-manager", "local", "-q"]
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=home, capture_output=True, check=True)
    return time.perf_counter() - started


def main(old: str, rounds: int) -> None:
    checkouts = {"before": old, "after": str(REPO)}
    homes = {name: tempfile.mkdtemp(prefix=f"ab-{name}-") for name in checkouts}
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    for name, checkout in checkouts.items():  # warm-up: schema, caches
        once(checkout, homes[name])
    for _ in range(rounds):
        for name, checkout in checkouts.items():
            times[name].append(once(checkout, homes[name]))
    for name, samples in times.items():
        print(f"{name}: median {statistics.median(samples):.3f} s, min {min(samples):.3f} s")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 15)
