"""The Slurm backend in one process on a real cluster: job arrays, idempotent submission, and
many jobs followed with one batched squeue call per poll."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from backends.slurm import client
from backends.slurm.backend import SlurmBackend, submit_once
from backends.slurm.script import JobFiles
from backends.slurm.state import exit_info
from backends.slurm.watch import job_states, watcher
from runner.backend import ExitInfo, LaunchRequest, Prepared, RunRef
from runner.project.spec import load_spec
from runner.status import RunStatus
from tests.helpers import write_project
from tests.slurm_cluster import SlurmCluster


def _request(project: Path, home: Path, command: str, config: dict[str, Any]) -> LaunchRequest:
    run_id = uuid.uuid4().hex
    artifacts = home / "artifacts" / run_id
    artifacts.mkdir(parents=True)
    return LaunchRequest(
        run_id=run_id,
        command=command,
        work_dir=project,
        env={"RUNNER_RUN_ID": run_id},
        spec=load_spec(project),
        config=config,
        artifacts_dir=artifacts,
    )


def _project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", {"MLproject": "entry_points: {main: {command: 'true'}}"})


def test_a_sweep_is_one_job_array_of_child_runs(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    project = _project(tmp_path)
    requests = [
        _request(project, runner_home, f'echo "child {i} task $SLURM_ARRAY_TASK_ID"; exit {i}', {})
        for i in range(3)
    ]
    handles = SlurmBackend().submit_array(requests, max_parallel=2)
    array_id = handles[0].job_id.split("_")[0]
    assert [h.job_id for h in handles] == [f"{array_id}_{i}" for i in range(3)]
    ends = [h.wait(timeout=120) for h in handles]
    assert [(e.status, e.exit_code) for e in ends] == [
        (RunStatus.FINISHED, 0),
        (RunStatus.FAILED, 1),
        (RunStatus.FAILED, 2),
    ]
    outputs = [b"".join(c.data for c in h.logs() if c.stream == "stdout") for h in handles]
    assert outputs == [f"child {i} task {i}\n".encode() for i in range(3)]
    script = (requests[0].artifacts_dir / "slurm" / "job.sh").read_text()  # type: ignore[operator]
    assert "#SBATCH --array=0-2%2\n" in script
    assert slurm.job_field(array_id, "ArrayTaskThrottle") == "2"


def test_a_retried_submit_finds_the_existing_job(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    request = _request(_project(tmp_path), runner_home, "sleep 30", {})
    handle = SlurmBackend().launch(Prepared(request))
    script = Path(handle.record.root) / "job.sh"
    again = submit_once(script, handle.record.name, f"runner:{request.run_id}")
    assert again == handle.job_id
    relaunched = SlurmBackend().launch(Prepared(request))  # a second launch of the same run
    assert relaunched.job_id == handle.job_id
    # the launching process died after sbatch, before it kept the job id: found by name
    (request.artifacts_dir / "slurm-job.json").unlink()  # type: ignore[operator]
    assert SlurmBackend().launch(Prepared(request)).job_id == handle.job_id
    assert slurm.jobs() == [handle.job_id]
    handle.cancel(grace=5)
    assert handle.wait(timeout=60).status is RunStatus.KILLED


def test_many_jobs_are_followed_with_one_squeue_call_per_poll(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    project = _project(tmp_path)
    backend = SlurmBackend()
    handles = [
        backend.launch(Prepared(_request(project, runner_home, f"exit {i % 2}", {})))
        for i in range(8)
    ]
    before = client.CALLS["squeue"]
    polls_before = watcher().polls
    ends = [h.wait(timeout=180) for h in handles]
    assert [e.status for e in ends] == [RunStatus.FINISHED, RunStatus.FAILED] * 4
    polls = watcher().polls - polls_before
    assert 0 < client.CALLS["squeue"] - before <= polls + 1  # one question per poll, all jobs


def test_reconcile_asks_once_for_all_runs(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    project = _project(tmp_path)
    backend = SlurmBackend()
    done = _request(project, runner_home, "exit 5", {})
    running = _request(project, runner_home, "sleep 60", {})
    unkept = _request(project, runner_home, "sleep 60", {})  # its job id was never kept
    never = _request(project, runner_home, "true", {})  # recorded, never submitted
    first = backend.launch(Prepared(done))
    second = backend.launch(Prepared(running))
    third = backend.launch(Prepared(unkept))
    (unkept.artifacts_dir / "slurm-job.json").unlink()  # type: ignore[operator]
    first.wait(timeout=120)
    refs = [
        RunRef(r.run_id, RunStatus.RUNNING, {}, r.artifacts_dir)  # type: ignore[arg-type]
        for r in (done, running, unkept, never)
    ]
    before = client.CALLS["squeue"]
    verdicts = backend.reconcile(refs)
    # one call finds the jobs of runs without a kept id, one asks about every job
    assert client.CALLS["squeue"] - before == 2
    assert verdicts[done.run_id] == ExitInfo(
        RunStatus.FAILED, 5, f"Slurm job {first.job_id} FAILED: entry point exited with code 5"
    )
    live = {ExitInfo(RunStatus.RUNNING), ExitInfo(RunStatus.SCHEDULED)}  # SCHEDULED if PENDING
    assert verdicts[running.run_id] in live
    assert verdicts[unkept.run_id] in live  # found by its comment
    assert (unkept.artifacts_dir / "slurm-job.json").exists()  # type: ignore[operator]
    assert verdicts[never.run_id] is None  # LOST: there is no job to ask about
    for handle in (second, third):
        handle.cancel(grace=5)
        assert handle.wait(timeout=60).status is RunStatus.KILLED


def test_ended_jobs_are_read_from_sacct_or_from_scontrol_without_accounting(
    slurm: SlurmCluster, tmp_path: Path, runner_home: Path
) -> None:
    handle = SlurmBackend().launch(
        Prepared(_request(_project(tmp_path), runner_home, "exit 6", {}))
    )
    before = dict(client.CALLS)
    info = handle.wait(timeout=120)
    assert (info.status, info.exit_code) == (RunStatus.FAILED, 6)
    used = {name: client.CALLS[name] - before.get(name, 0) for name in ("sacct", "scontrol")}
    if slurm.accounting:
        assert used["sacct"] >= 1, used
    else:
        assert used["sacct"] == 0 and used["scontrol"] >= 1, used


def test_a_job_slurm_forgot_keeps_the_exit_code_its_script_wrote(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    files = JobFiles(tmp_path / "job")
    files.root.mkdir()
    files.output(0).write_text("")
    files.exit_status(0).write_text("9\n")  # what the batch script wrote before Slurm purged it
    states = job_states({"987654": files})
    assert exit_info(states["987654"]) == ExitInfo(
        RunStatus.FAILED, 9, "Slurm job 987654 FAILED: entry point exited with code 9"
    )
    assert job_states({"987655": JobFiles(tmp_path / "nothing")}) == {}  # unknown: LOST
