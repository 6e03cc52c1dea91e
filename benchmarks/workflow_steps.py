"""workflow-200: a 200-step chain of no-op steps; scheduling overhead per step, the fully
cached re-run, and the same DAG in Snakemake when it is installed (``--snakemake PYTHON``).

    python -m benchmarks.workflow_steps [--steps 200] [--snakemake /path/to/venv/bin/python]

Overhead per step = (workflow wall time - the sum of the step runs' own recorded durations)
/ steps, with --max-parallel 1. A step's own duration is its record's start to end: its runner
process (the supervisor) starting, the entry point, the final write.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

NOOP = 'entry_points:\n  main:\n    parameters: {i: int}\n    command: "true {i}"\n'


def write_chain(folder: Path, steps: int) -> Path:
    (folder / "noop").mkdir()
    (folder / "noop" / "MLproject").write_text(NOOP)
    lines = ["name: chain", "steps:"]
    for i in range(steps):
        needs = f", needs: [s{i - 1}]" if i else ""
        lines.append(f"  s{i}: {{project: noop, parameters: {{i: {i}}}{needs}}}")
    path = folder / "wf.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_workflow(path: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    argv = [sys.executable, "-m", "runner", "workflow", "run", str(path), "--json", "-q"]
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return wall, json.loads(result.stdout.splitlines()[-1])


def own_seconds(run_ids: list[str], env: dict[str, str]) -> float:
    """Σ (end - start) of the step runs, from the store."""
    code = (
        "import json,sys; from runner.store.open import open_store; s=open_store();"
        "print(json.dumps([(r.start_time, r.end_time) for r in map(s.get_run, sys.argv[1:])]))"
    )
    out = subprocess.run([sys.executable, "-c", code, *run_ids], env=env, capture_output=True,
                         text=True, check=True).stdout
    stamp = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()  # noqa: E731
    return sum(stamp(end) - stamp(start) for start, end in json.loads(out))


def snakemake_chain(folder: Path, steps: int, python: str) -> tuple[float, float]:
    rules = []
    for i in range(steps):
        needs = f'"s{i - 1}.done"' if i else "[]"
        rules.append(
            f"rule s{i}:\n    input: {needs}\n    output: \"s{i}.done\"\n"
            f"    shell: \"true {i} && touch {{output}}\"\n"
        )
    header = f'rule all:\n    input: "s{steps - 1}.done"\n\n'
    (folder / "Snakefile").write_text(header + "\n".join(rules))
    argv = [python, "-m", "snakemake", "--cores", "1", "--quiet", "all"]
    times = []
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(argv, cwd=folder, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--snakemake", help="a python that has snakemake installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-wf-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "RUNNER_HOME": str(folder / "home")}
        path = write_chain(folder, args.steps)
        cold_wall, cold = run_workflow(path, env)
        steps = cold["steps"]  # type: ignore[index]
        own = own_seconds([s["run_id"] for s in steps.values()], env)  # type: ignore[union-attr]
        cached_wall, cached = run_workflow(path, env)
        result = {
            "steps": args.steps,
            "cold_wall_s": round(cold_wall, 3),
            "cold_steps_own_s": round(own, 3),
            "overhead_per_step_ms": round((cold_wall - own) / args.steps * 1000, 2),
            "cold_per_step_ms": round(cold_wall / args.steps * 1000, 2),
            "cached_rerun_wall_s": round(cached_wall, 3),
            "cached_rerun_in_workflow_s": cached["seconds"],
            "all_cached": {s["status"] for s in cached["steps"].values()} == {"cached"},  # type: ignore[union-attr]
        }
        if args.snakemake:
            (folder / "snake").mkdir()
            first, rerun = snakemake_chain(folder / "snake", args.steps, args.snakemake)
            result["snakemake_first_s"], result["snakemake_rerun_s"] = round(first, 3), round(rerun, 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
