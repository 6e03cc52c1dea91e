"""Slurm's own commands (sbatch, squeue, sacct, scontrol, scancel) as small typed calls.

Each call is one subprocess with a timeout; a cluster that does not answer is a BackendError
that says which command failed and why. Job keys are Slurm's ids: ``123`` or ``123_4`` for
task 4 of array 123. ``CALLS`` counts the calls per command, for tests and benchmarks.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from backends.slurm.state import JobState, base_state, exit_pair, from_wait_status
from runner.errors import BackendError

TIMEOUT_SECONDS = 60.0
CALLS: Counter[str] = Counter()
_INVALID_JOB = "Invalid job id"


def slurm(argv: Sequence[str], timeout: float = TIMEOUT_SECONDS) -> str:
    """Run a Slurm client command; its stdout, or a BackendError naming what went wrong."""
    CALLS[argv[0]] += 1
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as exc:
        raise BackendError(
            f"{argv[0]} not found: the slurm backend needs Slurm's client commands on PATH",
            hint="install them (Debian: slurm-client) and point SLURM_CONF at the cluster's "
            "slurm.conf if it is not in /etc/slurm",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"{argv[0]} did not answer within {timeout:.0f} s") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise BackendError(f"{argv[0]} failed: {' '.join(message)[-500:] or done.returncode}")
    return done.stdout


def submit(script: Path) -> str:
    """``sbatch --parsable script`` → the job id (``123`` even on a federated cluster)."""
    out = slurm(["sbatch", "--parsable", str(script)])
    return out.strip().split(";")[0]


def cancel(job_id: str, *, kill: bool = False) -> None:
    """``scancel``: Slurm sends SIGTERM, then SIGKILL after its KillWait; ``kill`` at once."""
    argv = ["scancel", "--signal=KILL", "--full", job_id] if kill else ["scancel", job_id]
    try:
        slurm(argv)
    except BackendError as exc:
        if _INVALID_JOB not in exc.message and "already completing" not in exc.message:
            raise


def find_job(name: str, comment: str) -> str | None:
    """The id of a job with this name and comment that Slurm still knows, if any."""
    out = slurm(["squeue", "--json", "--states=all", f"--name={name}"])
    for job in _json_jobs(out):  # filtered here too: 22.05 ignores --name with --json
        if job.get("name") == name and job.get("comment") == comment:
            array = int(job.get("array_job_id") or 0)
            return str(array or job["job_id"])
    return None


def jobs_by_comment(comments: Collection[str]) -> dict[str, str]:
    """comment → job id of the plain jobs Slurm still knows with one of ``comments``."""
    out = slurm(["squeue", "--json", "--states=all"])
    return {
        str(job["comment"]): str(job["job_id"])
        for job in _json_jobs(out)
        if job.get("comment") in comments and not job.get("array_job_id")
    }


def live_states(job_ids: Collection[str]) -> dict[str, JobState]:
    """One ``squeue --json`` for all of ``job_ids`` (their arrays' tasks included)."""
    bases = sorted({key.split("_")[0] for key in job_ids}, key=int)
    if not bases:
        return {}
    try:
        out = slurm(["squeue", "--json", "--states=all", f"--jobs={','.join(bases)}"])
    except BackendError as exc:
        if _INVALID_JOB in exc.message:  # every one of them is gone from slurmctld
            return {}
        raise
    # Slurm 22.05's squeue --json ignores --jobs (and every filter): keep only what was asked
    wanted = set(job_ids)
    states = (state for job in _json_jobs(out) for state in _squeue_states(job))
    return {state.job_id: state for state in states if state.job_id in wanted}


def _json_jobs(out: str) -> list[dict[str, Any]]:
    try:
        jobs = json.loads(out).get("jobs", [])
    except (ValueError, AttributeError) as exc:
        raise BackendError(f"squeue --json gave output runner cannot read: {exc}") from exc
    return [job for job in jobs if isinstance(job, dict)]


def _squeue_states(job: Mapping[str, Any]) -> Iterator[JobState]:
    state = base_state(str(job.get("job_state", "")))
    reason = str(job.get("state_reason", "") or "")
    status = job.get("exit_code")
    restarts = int(job.get("restart_cnt") or 0)
    for key in _keys(job):
        parsed = from_wait_status(key, state, reason, status if isinstance(status, int) else None)
        yield JobState(key, parsed.state, reason, parsed.exit_code, parsed.exit_signal, restarts)


def _keys(job: Mapping[str, Any]) -> list[str]:
    array = int(job.get("array_job_id") or 0)
    task = job.get("array_task_id")
    if not array:
        return [str(job["job_id"])]
    if isinstance(task, int):
        return [f"{array}_{task}"]
    return [f"{array}_{index}" for index in task_indexes(str(job.get("array_task_string", "")))]


def task_indexes(spec: str) -> list[int]:
    """Slurm's task list ``0-3,7%2`` (``%`` = at most that many at once) → [0, 1, 2, 3, 7]."""
    indexes: list[int] = []
    for part in spec.partition("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            step = high.partition(":")
            indexes.extend(range(int(low), int(step[0] or low) + 1, int(step[2] or 1)))
    return indexes


@functools.cache
def accounting_enabled() -> bool:
    """Whether the cluster keeps accounting (``sacct`` works): once per process."""
    for line in slurm(["scontrol", "show", "config"]).splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "AccountingStorageType":
            return value.strip() not in ("accounting_storage/none", "(null)", "")
    return False


def accounted_states(job_ids: Iterable[str]) -> dict[str, JobState]:
    """One ``sacct`` for the ended jobs: the latest attempt of each (no duplicates)."""
    keys = sorted(set(job_ids))
    if not keys:
        return {}
    fields = "JobID,State,ExitCode,Reason,Restarts"
    try:
        out = slurm(["sacct", "-X", "-n", "-P", f"--format={fields}", f"--jobs={','.join(keys)}"])
    except BackendError as exc:
        if "Restarts" not in exc.message:
            raise
        fields = "JobID,State,ExitCode,Reason"  # an older sacct without Restarts
        out = slurm(["sacct", "-X", "-n", "-P", f"--format={fields}", f"--jobs={','.join(keys)}"])
    found: dict[str, JobState] = {}
    for line in out.splitlines():
        cols = line.split("|")
        if len(cols) >= 4:
            code, sig = exit_pair(cols[2])
            restarts = int(cols[4]) if len(cols) > 4 and cols[4].isdigit() else 0
            found[cols[0]] = JobState(cols[0], base_state(cols[1]), cols[3], code, sig, restarts)
    return found


def controller_states() -> dict[str, JobState]:
    """``scontrol -o show job``: every job slurmctld still holds (finished ones for MinJobAge)."""
    try:
        out = slurm(["scontrol", "-o", "show", "job"])
    except BackendError as exc:
        if "No jobs in the system" in exc.message:
            return {}
        raise
    found: dict[str, JobState] = {}
    for line in out.splitlines():
        for state in _scontrol_states(_fields(line)):
            found[state.job_id] = state
    return found


def _fields(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def _scontrol_states(fields: Mapping[str, str]) -> Iterator[JobState]:
    if "JobId" not in fields:
        return
    code, sig = exit_pair(fields.get("ExitCode", ""))
    state = base_state(fields.get("JobState", ""))
    restarts = int(fields.get("Restarts", "0") or 0)
    array, task = fields.get("ArrayJobId"), fields.get("ArrayTaskId", "")
    keys = [fields["JobId"]]
    if array:
        keys = [f"{array}_{t}" for t in ([int(task)] if task.isdigit() else task_indexes(task))]
    for key in keys:
        yield JobState(key, state, fields.get("Reason", ""), code, sig, restarts)
