"""reconcile-10k-live: `runner run` beside 10,000 live runs kept alive by a cluster-like backend.

The backend is a real plugin (a dist-info in the scratch dir) that counts how often, and with how
many runs, it is asked; every run it is asked about stays RUNNING, as jobs on a busy cluster do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement

PROJECT = c.PROJECTS / "trivial"
LIVE_RUNS, QUICK_LIVE_RUNS = 10_000, 500

COUNTING_BACKEND = '''
"""Counts reconcile calls (one JSON line each: the batch size); every run stays RUNNING."""
import json, os
from runner.backend import BaseBackend, ExitInfo
from runner.status import RunStatus


class CountingBackend(BaseBackend):
    name = "counting"

    def launch(self, prepared):
        raise NotImplementedError("the benchmark only reconciles")

    def reconcile(self, refs):
        with open(os.environ["COUNTING_LOG"], "a") as log:
            log.write(json.dumps({"batch": len(refs)}) + "\\n")
        return {ref.run_id: ExitInfo(RunStatus.RUNNING) for ref in refs}
'''

# Released runs: RUNNING, no runner process, owned by the backend (what reconcile leaves after
# a cluster job's runner went away).
_FILL = """
import sys
from runner.store import NewRun
from runner.store.open import open_store
store = open_store()
for _ in range(int(sys.argv[1])):
    run_id = store.create_run(NewRun(experiment="bench-live", entry_point="main",
        command="true", backend="counting", parameters={}, source={},
        environment={"manager": "local"}))
    store.start_run(run_id)
print(len(store.backend_owned_runs("counting", 100_000)))
"""


def _install_backend(site: Path) -> None:
    site.mkdir(parents=True, exist_ok=True)
    (site / "bench_counting_backend.py").write_text(COUNTING_BACKEND)
    dist = site / "bench_counting_backend-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-counting\nVersion: 0.1\n")
    points = "[runner.backends]\ncounting = bench_counting_backend:CountingBackend\n"
    (dist / "entry_points.txt").write_text(points)


def _env(ctx: Context) -> dict[str, str]:
    env = c.runner_env(ctx.scratch / "runner-home", COUNTING_LOG=str(ctx.scratch / "calls.log"))
    env["PYTHONPATH"] = f"{ctx.scratch / 'site'}:{env['PYTHONPATH']}"
    return env


def prepare_runner(ctx: Context) -> None:
    _install_backend(ctx.scratch / "site")
    count = QUICK_LIVE_RUNS if ctx.quick else LIVE_RUNS
    proc = subprocess.run(
        [sys.executable, "-c", _FILL, str(count)],
        env=_env(ctx),
        cwd=ctx.scratch,
        capture_output=True,
        text=True,
        timeout=c.TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0 or proc.stdout.strip() != str(count):
        raise c.BenchError(f"filling the store failed: {(proc.stderr or proc.stdout)[-300:]}")


def _calls(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [json.loads(line)["batch"] for line in log.read_text().splitlines()]


def run_runner(ctx: Context) -> Measurement:
    log = ctx.scratch / "calls.log"
    before = len(_calls(log))
    m = c.timed(c.runner_run(PROJECT, "--env-manager", "local"), _env(ctx), ctx.scratch)
    batches = _calls(log)[before:]
    extra = {**m.extra, "backend_calls": float(len(batches)), "batch": float(sum(batches))}
    return Measurement(m.seconds, extra)


def available() -> str | None:
    return c.cli_reason("run")


CASES = [
    Case(
        name="reconcile-10k-live",
        description=(
            "`runner run benchmarks/projects/trivial` with 10,000 live runs (500 in --quick) "
            "released to a plugin backend that counts its reconcile calls; extra columns: "
            "calls made during the timed command and the runs asked about"
        ),
        available=available,
        run_runner=run_runner,
        prepare_runner=prepare_runner,
        quick=True,
    )
]
