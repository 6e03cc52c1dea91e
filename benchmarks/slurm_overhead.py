"""Slurm backend overhead on a throwaway one-node cluster (tests/slurm_cluster.py).

    /root/.pyenv/versions/3.11.7/bin/python -m benchmarks.slurm_overhead [--rounds 5] [--jobs 100]
        [--accounting] [--json benchmarks/results/slurm.json]

Cases:
- ``trivial``: ``runner run <project> -b slurm`` of ``date +%s.%N`` (in a home that has run
  once: the first run of a home creates its store, reported apart) against a bare
  ``sbatch --wait --wrap 'date +%s.%N'`` of the same command on the same cluster, alternating
  (A B A B ...), each sample on an idle node, with ``runner run -b local`` of the same
  project as a reference for runner's own start-up and finish. Submit-to-start = the job's
  own clock at its start minus the moment the command was started; end-to-end = the whole
  command's wall time.
- ``concurrent``: one process launches ``--jobs`` runs of ``true`` through the backend and
  waits for all; reported: wall time and how many squeue/sacct/scontrol calls that took,
  beside bare ``sbatch --wrap true`` x N polled with one ``squeue`` every 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.slurm_cluster import SlurmCluster, slurm_cluster  # noqa: E402

MLPROJECT = "entry_points:\n  main:\n    command: 'date +%s.%N'\n"

_CONCURRENT = """
import json, sys, time, uuid
from pathlib import Path
from backends.slurm import client
from backends.slurm.backend import SlurmBackend
from backends.slurm.watch import watcher
from runner.backend import LaunchRequest, Prepared
from runner.project.spec import load_spec

project, home, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
spec, backend = load_spec(project), SlurmBackend()
t0 = time.perf_counter()
handles = []
for _ in range(count):
    run_id = uuid.uuid4().hex
    artifacts = home / "artifacts" / run_id
    artifacts.mkdir(parents=True)
    request = LaunchRequest(run_id, "true", project, {}, spec, artifacts_dir=artifacts)
    handles.append(backend.launch(Prepared(request)))
submitted = time.perf_counter() - t0
ends = [h.wait() for h in handles]
print(json.dumps({
    "seconds": time.perf_counter() - t0, "submit_seconds": submitted,
    "finished": sum(e.status.value == "FINISHED" for e in ends),
    "squeue_calls": client.CALLS["squeue"], "sacct_calls": client.CALLS["sacct"],
    "scontrol_calls": client.CALLS["scontrol"], "polls": watcher().polls,
}))
"""


def _env(cluster: SlurmCluster, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        **cluster.env,
        "RUNNER_HOME": str(home),
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def _settle(cluster: SlurmCluster) -> None:
    """Each sample starts on an idle node: a job still completing would make the next one
    wait for Slurm's periodic scheduler instead of starting at submission."""
    while cluster.jobs() or cluster.run("sinfo", "-h", "-o", "%T").strip() != "idle":
        time.sleep(0.1)
    time.sleep(0.5)


def _bare_trivial(cluster: SlurmCluster, scratch: Path) -> dict[str, float]:
    _settle(cluster)
    out = scratch / "bare.out"
    t0 = time.time()
    cluster.run("sbatch", "--wait", "--wrap", "date +%s.%N", f"--output={out}", timeout=300)
    end = time.time()
    return {"submit_to_start": float(out.read_text().split()[0]) - t0, "end_to_end": end - t0}


def _runner_trivial(
    cluster: SlurmCluster, home: Path, project: Path, backend: str = "slurm"
) -> dict[str, float]:
    _settle(cluster)
    argv = [sys.executable, "-m", "runner", "run", str(project), "-b", backend]
    t0 = time.time()
    done = subprocess.run(
        [*argv, "--env-manager", "local"],
        env=_env(cluster, home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    end = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"runner run failed: {done.stderr[-500:]}")
    started = float(done.stdout.split()[0])
    return {"submit_to_start": started - t0, "end_to_end": end - t0}


def _bare_concurrent(cluster: SlurmCluster, count: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for _ in range(count):
        cluster.run("sbatch", "--parsable", "--wrap", "true", "--output=/dev/null")
    polls = 0
    while cluster.jobs():
        polls += 1
        time.sleep(0.25)
    return {"seconds": time.perf_counter() - t0, "squeue_calls": float(polls + 1)}


def _runner_concurrent(cluster: SlurmCluster, scratch: Path, count: int) -> dict[str, Any]:
    project = scratch / "concurrent"
    project.mkdir()
    (project / "MLproject").write_text(MLPROJECT)
    home = scratch / "concurrent-home"
    argv = [sys.executable, "-c", _CONCURRENT, str(project), str(home), str(count)]
    done = subprocess.run(
        argv, env=_env(cluster, home), capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"concurrent case failed: {done.stderr[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--accounting", action="store_true", help="with slurmdbd + MariaDB")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp,
        slurm_cluster(args.accounting) as cluster,
    ):
        scratch = Path(tmp)
        project = scratch / "trivial"
        project.mkdir()
        (project / "MLproject").write_text(MLPROJECT)
        # one home per backend, as a user has: its first run creates the store (migrations),
        # measured apart as cold_home; the rounds are the steady state
        homes = {name: scratch / f"home-{name}" for name in ("slurm", "local")}
        cold = _runner_trivial(cluster, homes["slurm"], project)
        _runner_trivial(cluster, homes["local"], project, "local")
        bare, runner, local = [], [], []
        for _ in range(args.rounds):
            runner.append(_runner_trivial(cluster, homes["slurm"], project))
            bare.append(_bare_trivial(cluster, scratch))
            local.append(_runner_trivial(cluster, homes["local"], project, "local"))
        concurrent = _runner_concurrent(cluster, scratch, args.jobs)
        bare_concurrent = _bare_concurrent(cluster, args.jobs)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg(),
        "accounting": args.accounting,
        "rounds": args.rounds,
        "trivial": {"runner": runner, "bare": bare, "runner_local": local, "cold_home": cold},
        "concurrent": {"runner": concurrent, "bare": bare_concurrent, "jobs": args.jobs},
    }
    for key in ("submit_to_start", "end_to_end"):
        r, b = _median(runner, key), _median(bare, key)
        print(f"{key}: runner {r:.2f} s, bare sbatch {b:.2f} s, overhead {r - b:+.2f} s")
    cold_start = cold["submit_to_start"]
    print(f"first run in a new home (creates the store): submit_to_start {cold_start:.2f} s")
    local_e2e = _median(local, "end_to_end")
    print(f"reference: the same project with runner -b local, end to end {local_e2e:.2f} s")
    print(f"{args.jobs} concurrent: runner {json.dumps(concurrent)}")
    print(f"{args.jobs} concurrent: bare {json.dumps(bare_concurrent)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
