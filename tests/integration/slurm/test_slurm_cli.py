"""The Slurm backend through the CLI on a real cluster: submit, logs, states, cancel, re-attach."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import RUNNER, record, run_cli, write_project
from tests.slurm_cluster import SlurmCluster


def _project(root: Path, command: str) -> Path:
    return write_project(
        root,
        {
            "MLproject": f"""
                entry_points:
                  main:
                    parameters:
                      alpha: {{type: float, default: 0.5}}
                      flag: {{type: string, default: none}}
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
    code, out, _ = _run(project, config_file)
    assert code != 0
    assert "about to fail" in out
    run = _latest_run()
    assert (run["status"], run["exit_code"]) == ("FAILED", 3)
    assert "FAILED: entry point exited with code 3" in str(run["failure_reason"]), run


def test_time_exceeded_fails_with_timeout(
    slurm: SlurmCluster, tmp_path: Path, config_file: Path
) -> None:
    project = _project(tmp_path / "p", "echo sleeping; sleep 300")
    config_file.write_text("time: 1\n")  # minutes: Slurm's limits are whole minutes
    code, out, _ = _run(project, config_file)
    assert code != 0
    assert "sleeping" in out
    run = _latest_run()
    assert run["status"] == "FAILED"
    assert "TIMEOUT" in str(run["failure_reason"]), run
    assert slurm.jobs() == []


def test_extra_args_outside_the_allowlist_are_refused(slurm: SlurmCluster, tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "echo never")
    code, _, err = _run(project, '{"extra_args": ["--exclusive", "--uid=0"]}')
    assert code != 0
    assert "slurm extra_args: '--uid=0' is not an allowed sbatch option" in err
    assert "allowed: --begin, --cores-per-socket" in err  # the user is shown the list
    assert run_cli("runs", "list", "--json").stdout.strip() == "[]"  # no run was recorded
    assert slurm.jobs() == []


def test_unknown_config_keys_and_bad_time_are_refused(slurm: SlurmCluster, tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "echo never")
    code, _, err = _run(project, '{"time": "half an hour", "partitoin": "debug"}')
    assert code != 0
    assert "invalid backend config for 'slurm'" in err
    assert "'partitoin' was unexpected" in err
    assert "time: 'half an hour' is not valid" in err


def test_the_batch_script_artifact_is_what_slurm_ran(
    slurm: SlurmCluster, tmp_path: Path, config_file: Path, runner_home: Path
) -> None:
    project = _project(tmp_path / "p", "echo 'quoted  {alpha}' \"$SLURM_JOB_ID\"")
    config_file.write_text("partition: debug\ncpus: 2\nextra_args: ['--nice=5']\n")
    code, out, err = _run(project, config_file, "-P", "alpha=0.7", "--run-name", "my run")
    assert code == 0, err
    run_id = str(_latest_run()["run_id"])
    artifacts = _artifacts(runner_home, run_id)
    job = json.loads((artifacts / "slurm-job.json").read_text())
    assert f"quoted  0.7 {job['job_id']}" in out  # same quoting as locally
    kept = (artifacts / "slurm" / "job.sh").read_text()
    ran = slurm.run("scontrol", "write", "batch_script", job["job_id"], "-")
    assert ran == kept
    assert f"#SBATCH --job-name=runner-my-run-{run_id}\n" in kept
    assert f"#SBATCH --comment=runner:{run_id}\n" in kept
    assert "#SBATCH --cpus-per-task=2\n#SBATCH --no-requeue\n#SBATCH --nice=5\n" in kept
    assert slurm.job_field(job["job_id"], "JobName") == f"runner-my-run-{run_id}"
    assert slurm.job_field(job["job_id"], "NumCPUs") == "2"


def test_gpus_are_requested_and_too_many_refused(
    slurm: SlurmCluster, tmp_path: Path, config_file: Path, runner_home: Path
) -> None:
    project = _project(tmp_path / "p", "echo gpu job on gpu $SLURM_JOB_GPUS")
    config_file.write_text("gpus: 1\n")
    code, out, err = _run(project, config_file)
    assert code == 0, err
    run_id = str(_latest_run()["run_id"])
    job = json.loads((_artifacts(runner_home, run_id) / "slurm-job.json").read_text())
    assert slurm.job_field(job["job_id"], "TresPerJob") == "gres:gpu:1"
    # the fake devices are plain files: Slurm exports no GPU to the job (see the README)
    assert "gpu job on gpu\n" in out
    config_file.write_text("gpus: 3\n")  # the node has two
    code, _, err = _run(project, config_file)
    assert code != 0
    assert "Requested node configuration is not available" in err
    run = _latest_run()
    assert run["status"] == "FAILED"
    assert "Requested node configuration is not available" in str(run["failure_reason"])


def _detach(project: Path, config: str, *extra: str) -> str:
    code, out, err = _run(project, config, "--detach", *extra)
    assert code == 0, err
    return out.strip()


def _job(home: Path, run_id: str) -> dict[str, str]:
    path = _artifacts(home, run_id) / "slurm-job.json"
    _wait_for(path.exists, "the job to be submitted")
    return dict(json.loads(path.read_text()))


def _output(home: Path, run_id: str, attempt: int = 0) -> str:
    path = _artifacts(home, run_id) / "slurm" / f"attempt-{attempt}.out"
    return path.read_text() if path.exists() else ""


def _supervisor_pid(run_id: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"runner.execution.supervisor" in argv and run_id.encode() in argv:
                return int(entry.name)
    raise AssertionError(f"no supervisor process for run {run_id}")


def _show(run_id: str) -> dict[str, object]:
    result = run_cli("runs", "show", run_id, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_cancel_kills_the_job(slurm: SlurmCluster, tmp_path: Path, runner_home: Path) -> None:
    project = _project(tmp_path / "p", "echo started; sleep 300")
    run_id = _detach(project, "{}")
    # --detach returns once sbatch has taken the job: its record is there already
    assert (_artifacts(runner_home, run_id) / "slurm-job.json").is_file()
    _wait_for(lambda: "started" in _output(runner_home, run_id), "the job to start")
    job_id = _job(runner_home, run_id)["job_id"]
    result = run_cli("runs", "cancel", run_id)
    assert result.returncode == 0, result.stderr
    shown = _show(run_id)
    assert shown["status"] == "KILLED", shown
    assert slurm.job_field(job_id, "JobState") == "CANCELLED"
    _wait_for(lambda: slurm.jobs() == [], "no job left")
    if slurm.accounting:
        accounted = slurm.run("sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id)
        assert accounted.startswith("CANCELLED"), accounted


def test_a_new_process_reports_the_real_outcome_after_the_runner_died(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    flag = tmp_path / "go"
    command = "echo started; while [ ! -e {flag} ]; do sleep 0.2; done; echo done; exit 4"
    run_id = _detach(_project(tmp_path / "p", command), "{}", "-P", f"flag={flag}")
    _wait_for(lambda: "started" in _output(runner_home, run_id), "the job to start")
    os.kill(_supervisor_pid(run_id), signal.SIGKILL)  # the runner dies; the job runs on
    job_id = _job(runner_home, run_id)["job_id"]
    assert _show(run_id)["status"] == "RUNNING"  # not failed: Slurm says it still runs
    assert slurm.job_field(job_id, "JobState") == "RUNNING"
    follower = spawn_follow(run_id)
    time.sleep(1)
    flag.touch()
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    assert "started" in out and "done" in out  # from the start, streamed from Slurm's files
    shown = _show(run_id)
    assert (shown["status"], shown["exit_code"]) == ("FAILED", 4), shown
    assert "done" in (_artifacts(runner_home, run_id) / "output.log").read_text()


def spawn_follow(run_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*RUNNER, "runs", "logs", run_id, "--follow"],
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_requeue_after_a_node_failure_keeps_both_attempts_logs(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    command = (
        'echo "attempt ${{SLURM_RESTART_COUNT:-0}}"; '
        '[ -n "${{SLURM_RESTART_COUNT:-}}" ] || sleep 300; echo finished'
    )
    project = _project(tmp_path / "p", command)
    runner = subprocess.Popen(
        [*RUNNER, "run", str(project), "-b", "slurm", "--env-manager", "local", "-c",
         '{"requeue": true}'],
        text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    run_id = _wait_run_id(runner_home)
    _wait_for(lambda: "attempt 0" in _output(runner_home, run_id), "the first attempt")
    job_id = _job(runner_home, run_id)["job_id"]
    requeued_at = time.time()
    slurm.run("scontrol", "requeue", job_id)  # what Slurm does when the node fails
    # a requeued job waits ~2 minutes (BeginTime) before it may start again: skip the wait
    # only once it is PENDING again: an update while the first attempt is still COMPLETING
    # can fail the job
    _wait_for(lambda: slurm.job_field(job_id, "JobState") == "PENDING", "the job to requeue")
    # and only once the node has let go of the first attempt (no longer "completing"), in a
    # later second than the requeue: slurmd revokes the job's credential with a timestamp in
    # whole seconds and refuses ("Job credential revoked") a launch credential of that second,
    # which Slurm's own ~2 minute BeginTime after a requeue always avoids
    _wait_for(lambda: slurm.run("sinfo", "-h", "-o", "%T").strip() == "idle", "an idle node")
    time.sleep(max(0.0, requeued_at + 2.0 - time.time()))
    slurm.run("scontrol", "update", f"jobid={job_id}", "StartTime=now")
    out, err = runner.communicate(timeout=240)
    if runner.returncode:  # Slurm's own account of the job, to tell its race from ours
        files = sorted((runner_home / "artifacts" / run_id / "slurm").glob("attempt-*"))
        dump = {f.name: f.read_text() for f in files}
        dump["job"] = slurm.run("scontrol", "show", "job", job_id)
        dump["ctld"] = (slurm.base / "slurmctld.log").read_text()[-2500:]
        dump["slurmd"] = (slurm.base / "slurmd.log").read_text()[-2500:]
        raise AssertionError(err + "\n" + "\n".join(f"== {k}\n{v}" for k, v in dump.items()))
    assert "attempt 0" in out and "attempt 1" in out and "finished" in out
    assert "attempt 1 of the job started (requeued)" in err
    assert _output(runner_home, run_id, 0) == "attempt 0\n"
    assert _output(runner_home, run_id, 1) == "attempt 1\nfinished\n"
    assert _show(run_id)["status"] == "FINISHED"
    assert slurm.job_field(job_id, "Restarts") == "1"


def _wait_run_id(home: Path) -> str:
    root = home / "artifacts"
    _wait_for(lambda: root.exists() and any(root.iterdir()), "the run to be recorded")
    return next(root.iterdir()).name


def test_a_pending_job_shows_its_reason_and_cancels_to_killed(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    project = _project(tmp_path / "p", "echo never runs")
    run_id = _detach(project, '{"extra_args": ["--begin=now+600"]}')
    job_id = _job(runner_home, run_id)["job_id"]
    log = _artifacts(runner_home, run_id) / "output.log"
    note = f"runner: Slurm job {job_id} PENDING (BeginTime)"
    _wait_for(lambda: log.exists() and note in log.read_text(), "the pending reason")
    result = run_cli("runs", "cancel", run_id)
    assert result.returncode == 0, result.stderr
    assert _show(run_id)["status"] == "KILLED"
    assert slurm.job_field(job_id, "JobState") == "CANCELLED"
    assert not _output(runner_home, run_id)  # it never started


def test_no_slurm_commands_refuses_the_run_before_it_exists(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "echo never")
    python_only = str(Path(sys.executable).parent)  # no scontrol, sbatch... there
    result = run_cli(
        "run", str(project), "-b", "slurm", "--env-manager", "local", env={"PATH": python_only}
    )
    assert result.returncode != 0
    assert "scontrol not found: the slurm backend needs Slurm's client commands on PATH" in (
        result.stderr
    )
    assert "install them (Debian: slurm-client)" in result.stderr
    assert run_cli("runs", "list", "--json").stdout.strip() == "[]"


def test_a_controller_that_does_not_answer_refuses_the_run(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "slurm.conf"
    port = next(
        line for line in slurm.conf.read_text().splitlines() if line.startswith("SlurmctldPort=")
    )
    elsewhere.write_text(slurm.conf.read_text().replace(port, "SlurmctldPort=9"))
    project = _project(tmp_path / "p", "echo never")
    result = run_cli(
        "run", str(project), "-b", "slurm", "--env-manager", "local",
        env={"SLURM_CONF": str(elsewhere)},
    )  # fmt: skip
    assert result.returncode != 0
    assert "error: scontrol failed: Slurmctld(primary) at " in result.stderr
    assert " is DOWN" in result.stderr
    assert run_cli("runs", "list", "--json").stdout.strip() == "[]"


def test_container_without_the_sites_runtime_is_refused(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    project = _project(tmp_path / "p", "echo never")
    code, _, err = _run(project, '{"container": "/shared/images/train.oci"}')
    assert code != 0
    assert "slurm config key 'container' needs the cluster's container runtime" in err
    assert f"no oci.conf beside {slurm.conf}" in err
    assert run_cli("runs", "list", "--json").stdout.strip() == "[]"


def test_a_shared_dir_of_its_own_holds_the_job_files_and_the_journal(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("RUNNER_SLURM_SHARED_DIR", str(shared))
    project = _project(tmp_path / "p", "python train.py {alpha}")
    code, out, err = _run(project, "{}", "-P", "alpha=0.9")
    assert code == 0, err
    assert "training with alpha=0.9" in out
    run_id = str(_latest_run()["run_id"])
    assert _show(run_id)["metrics"]["alpha_seen"] == 0.9  # the journal on the shared path
    job_dir = shared / "slurm" / run_id
    assert (job_dir / "attempt-0.out").read_text() == "training with alpha=0.9\n"
    assert (job_dir / "artifacts" / "tracking.jsonl").exists()
    kept = _artifacts(runner_home, run_id) / "slurm"  # and a copy with the run's artifacts
    assert (kept / "job.sh").read_text() == (job_dir / "job.sh").read_text()
    assert (kept / "attempt-0.out").read_text() == "training with alpha=0.9\n"


def test_the_sample_project_runs_in_its_python_env_on_the_cluster(
    slurm: SlurmCluster, config_file: Path, runner_home: Path
) -> None:
    sample = Path(__file__).parents[3] / "sample_projects" / "linear_regression"
    config_file.write_text("partition: debug\ntime: 10\ncpus: 1\n")
    result = run_cli(
        "run", str(sample), "-b", "slurm", "-c", str(config_file), "-P", "alpha=0.3",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "rmse=" in result.stdout and "alpha=0.3" in result.stdout
    run = _latest_run()
    assert (run["status"], run["exit_code"]) == ("FINISHED", 0)
    prefix = str(_show(str(run["run_id"]))["environment"]["prefix"])  # type: ignore[index]
    script = (_artifacts(runner_home, str(run["run_id"])) / "slurm" / "job.sh").read_text()
    assert f"[ -e {prefix} ] || runner_unshared" in script  # the node checks it sees the env


def test_ctrl_c_cancels_the_job(slurm: SlurmCluster, tmp_path: Path, runner_home: Path) -> None:
    project = _project(tmp_path / "p", "echo started; sleep 300")
    runner = subprocess.Popen(
        [*RUNNER, "run", str(project), "-b", "slurm", "--env-manager", "local"],
        text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    run_id = _wait_run_id(runner_home)
    _wait_for(lambda: "started" in _output(runner_home, run_id), "the job to start")
    job_id = _job(runner_home, run_id)["job_id"]
    os.killpg(runner.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    _, err = runner.communicate(timeout=120)
    assert runner.returncode != 0
    shown = _show(run_id)
    assert shown["status"] == "KILLED", (shown, err)
    assert "interrupted (Ctrl-C)" in str(shown["failure_reason"])
    assert slurm.job_field(job_id, "JobState") == "CANCELLED"
    _wait_for(lambda: slurm.jobs() == [], "no job left")


def test_a_node_failure_without_requeue_fails_the_run(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    run_id = _detach(_project(tmp_path / "p", "echo started; sleep 300"), "{}")
    _wait_for(lambda: "started" in _output(runner_home, run_id), "the job to start")
    job_id = _job(runner_home, run_id)["job_id"]
    try:
        slurm.run("scontrol", "update", "nodename=localhost", "state=down", "reason=test")
        _wait_for(lambda: _show(run_id)["status"] == "FAILED", "the run to fail")
    finally:
        # ReturnToService=2 may have brought the node back already: resume is then refused
        slurm.run("scontrol", "update", "nodename=localhost", "state=resume", check=False)
        _wait_for(lambda: slurm.run("sinfo", "-h", "-o", "%T").strip() == "idle", "the node")
    shown = _show(run_id)
    assert f"Slurm job {job_id} NODE_FAIL" in str(shown["failure_reason"]), shown


def test_a_queued_job_is_scheduled_until_it_starts_then_running(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    project = _project(tmp_path / "p", "echo started; sleep 8; echo done")
    run_id = _detach(project, '{"extra_args": ["--begin=now+600"]}')
    job_id = _job(runner_home, run_id)["job_id"]
    log = _artifacts(runner_home, run_id) / "output.log"
    note = f"runner: Slurm job {job_id} PENDING (BeginTime)"
    _wait_for(lambda: log.exists() and note in log.read_text(), "the pending reason")
    assert _show(run_id)["status"] == "SCHEDULED"  # queued: not yet RUNNING
    slurm.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    _wait_for(lambda: _show(run_id)["status"] == "RUNNING", "the run to be recorded RUNNING")
    assert "started" in _output(runner_home, run_id) or _show(run_id)["status"] == "RUNNING"
    _wait_for(lambda: _show(run_id)["status"] == "FINISHED", "the run to finish")
    assert "done" in _output(runner_home, run_id)


def test_a_queued_job_whose_runner_died_stays_scheduled_then_runs(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    project = _project(tmp_path / "p", "echo started; sleep 8; echo done")
    run_id = _detach(project, '{"extra_args": ["--begin=now+600"]}')
    job_id = _job(runner_home, run_id)["job_id"]
    log = _artifacts(runner_home, run_id) / "output.log"
    note = f"runner: Slurm job {job_id} PENDING (BeginTime)"
    _wait_for(lambda: log.exists() and note in log.read_text(), "the pending reason")
    os.kill(_supervisor_pid(run_id), signal.SIGKILL)  # the runner dies; the job stays queued
    assert _show(run_id)["status"] == "SCHEDULED"  # not lost, not RUNNING: Slurm says PENDING
    assert slurm.job_field(job_id, "JobState") == "PENDING"
    slurm.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    _wait_for(lambda: _show(run_id)["status"] != "SCHEDULED", "the run to leave SCHEDULED")
    assert _show(run_id)["status"] in ("RUNNING", "FINISHED")
    _wait_for(lambda: _show(run_id)["status"] == "FINISHED", "the run to finish")


def test_a_runs_uri_input_is_copied_where_the_nodes_see_it(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    maker = write_project(
        tmp_path / "make",
        {
            "MLproject": "entry_points: {main: {command: 'python make.py'}}",
            "make.py": """
                import runner_tracking as t
                open("numbers.txt", "w").write("1 2 3\\n")
                t.log_artifact("numbers.txt")
            """,
        },
    )
    made = run_cli("run", str(maker), "--env-manager", "local")
    assert made.returncode == 0, made.stderr
    source = _latest_run()["run_id"]
    reader = write_project(
        tmp_path / "read",
        {"MLproject": "entry_points: {main: {parameters: {data: path}, command: 'cat {data}'}}"},
    )
    code, out, err = _run(reader, "{}", "-P", f"data=runs:/{source}/numbers.txt")
    assert code == 0, err
    assert out == "1 2 3\n"
    run = _latest_run()
    copy = Path(str(run["command"]).removeprefix("cat "))
    assert copy.is_relative_to(runner_home / "inputs")  # RUNNER_HOME is what the nodes share
    assert not copy.exists()  # removed with the run that read it
