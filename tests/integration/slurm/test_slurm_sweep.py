"""A sweep on `-b slurm` through the CLI on a real cluster: one job array, a child run a task."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import records, run_cli, write_project
from tests.slurm_cluster import SlurmCluster


def _project(root: Path) -> Path:
    return write_project(
        root,
        {
            "MLproject": """
                entry_points:
                  main:
                    parameters:
                      alpha: {type: float, default: 0.5}
                    command: "python train.py {alpha}"
            """,
            "train.py": """
                import os, sys
                import runner_tracking as t
                alpha = float(sys.argv[1])
                t.log_metric("loss", 1 - alpha)
                print(f"task {os.environ['SLURM_ARRAY_TASK_ID']} alpha={alpha}")
                sys.exit(3 if alpha > 0.8 else 0)
            """,
        },
    )


def _sweep(project: Path, values: str, *extra: str) -> tuple[int, str]:
    args = ["run", str(project), "-b", "slurm", "--env-manager", "local", "-c", "{}"]
    result = run_cli(*args, "-P", f"alpha={values}", "--sweep", "grid", *extra, timeout=240)
    return result.returncode, result.stdout + result.stderr


def _job(home: Path, run_id: str) -> str:
    return str(json.loads((home / "artifacts" / run_id / "slurm-job.json").read_text())["job_id"])


def test_a_sweep_on_slurm_is_one_job_array_throttled_by_max_parallel(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    code, output = _sweep(_project(tmp_path / "p"), "0.1,0.2,0.3,0.4", "--max-parallel", "2")
    assert code == 0, output
    children = sorted(
        (r for r in records() if r["tags"].get("runner.step")),
        key=lambda r: r["parameters"]["alpha"],
    )
    assert [(r["status"], r["metrics"]["loss"]) for r in children] == [
        ("FINISHED", 0.9), ("FINISHED", 0.8), ("FINISHED", 0.7), ("FINISHED", 0.6)
    ]  # fmt: skip
    jobs = [_job(runner_home, str(r["run_id"])) for r in children]
    arrays = {job.split("_")[0] for job in jobs}
    assert len(arrays) == 1 and sorted(j.split("_")[1] for j in jobs) == ["0", "1", "2", "3"]
    [array] = arrays
    assert slurm.job_field(array, "ArrayTaskThrottle") == "2"
    for run, job in zip(children, jobs, strict=True):  # each child's output is its own task's
        log = (runner_home / "artifacts" / str(run["run_id"]) / "output.log").read_text()
        *said, last = log.splitlines()
        assert last == f"task {job.split('_')[1]} alpha={run['parameters']['alpha']}"
        assert all(line.startswith(f"runner: Slurm job {job} PENDING") for line in said), log
    assert not (runner_home / "batches").exists() or not any((runner_home / "batches").iterdir())


def test_a_failing_child_of_a_slurm_array_fails_alone(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    code, output = _sweep(_project(tmp_path / "p"), "0.5,0.9", "--max-parallel", "2")
    assert code == 1, output
    children = {r["parameters"]["alpha"]: r for r in records() if r["tags"].get("runner.step")}
    assert (children["0.5"]["status"], children["0.9"]["status"]) == ("FINISHED", "FAILED")
    assert children["0.9"]["exit_code"] == 3
    jobs = {_job(runner_home, str(r["run_id"])).split("_")[0] for r in children.values()}
    assert len(jobs) == 1  # one array all the same
