"""The Slurm backend through the CLI on a real cluster: submit, logs, states, cancel, re-attach."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.helpers import record, run_cli, write_project
from tests.slurm_cluster import SlurmCluster


def _project(root: Path, command: str) -> Path:
    return write_project(
        root,
        {
            "MLproject": f"""
                entry_points:
                  main:
                    parameters: {{alpha: {{type: float, default: 0.5}}, flag: {{type: string, default: none}}}}
                    command: {json.dumps(command)}
            """,
            "train.py": """
                import sys
                import runner_tracking as t
                alpha = float(sys.argv[1])
                t.log_metric("alpha_seen", alpha)
                print(f"training with alpha={alpha}")
                print("to stderr", file=sys.stderr)
            """,
        },
    )


def _run(project: Path, config: Path | str, *extra: str) -> tuple[int, str, str]:
    args = ["run", str(project), "-b", "slurm", "--env-manager", "local", "-c", str(config)]
    result = run_cli(*args, *extra, timeout=180)
    return result.returncode, result.stdout, result.stderr


def _latest_run() -> dict[str, object]:
    result = run_cli("runs", "list", "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)[0])


def _artifacts(home: Path, run_id: str) -> Path:
    return home / "artifacts" / run_id


def _wait_for(predicate: object, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_submit_streams_logs_and_finishes(
    slurm: SlurmCluster, tmp_path: Path, config_file: Path, runner_home: Path
) -> None:
    project = _project(tmp_path / "p", "python train.py {alpha}")
    config_file.write_text("cpus: 1\ntime: '00:05:00'\nmemory: 100M\n")
    code, out, err = _run(project, config_file, "-P", "alpha=0.3")
    assert code == 0, err
    assert "training with alpha=0.3" in out
    run = _latest_run()
    assert (run["status"], run["exit_code"]) == ("FINISHED", 0)
    shown = record(str(run["run_id"]))
    assert shown["metrics"]["alpha_seen"] == 0.3, shown  # logged through the journal
    log = (_artifacts(runner_home, str(run["run_id"])) / "output.log").read_text()
    assert "training with alpha=0.3" in log and "to stderr" in log


def test_nonzero_exit_fails_with_the_code(
    slurm: SlurmCluster, tmp_path: Path, config_file: Path
) -> None:
    project = _project(tmp_path / "p", "echo about to fail; exit 3")
    config_file.write_text("{}\n")
    code, out, err = _run(project, config_file)
    assert code != 0
    assert "about to fail" in out
    run = _latest_run()
    assert (run["status"], run["exit_code"]) == ("FAILED", 3)
    assert "FAILED: entry point exited with code 3" in str(run["failure_reason"]), run
