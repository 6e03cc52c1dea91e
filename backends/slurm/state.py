"""What Slurm says of a job, and what that means for its run (status, exit code, reason)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from runner.backend import ExitInfo
from runner.status import RunStatus

WAITING = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED"}
)
ACTIVE = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"})
FAILED_STATES = frozenset(
    {
        "FAILED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)
# exit code of the batch script when the compute node cannot see the env or the project
UNSHARED_EXIT = 97


@dataclass(frozen=True)
class JobState:
    """One job as Slurm reports it; ``exit_code``/``exit_signal`` once it ended."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: int | None = None
    exit_signal: int = 0
    restarts: int = 0

    @property
    def ended(self) -> bool:
        return self.state not in WAITING and self.state not in ACTIVE

    @property
    def status(self) -> RunStatus:
        if self.state in WAITING:
            return RunStatus.SCHEDULED
        if self.state in ACTIVE:
            return RunStatus.RUNNING
        return exit_info(self).status


def base_state(text: str) -> str:
    """``CANCELLED by 0`` (sacct) → ``CANCELLED``."""
    return text.split()[0].upper() if text.strip() else "UNKNOWN"


def exit_pair(text: str) -> tuple[int | None, int]:
    """Slurm's ``code:signal`` → (code, signal)."""
    code, _, sig = text.partition(":")
    try:
        return int(code), int(sig or 0)
    except ValueError:
        return None, 0


def from_wait_status(job_id: str, state: str, reason: str, status: int | None) -> JobState:
    """squeue's exit_code is a wait(2) status: code in the high byte, signal in the low."""
    if status is None:
        return JobState(job_id, state, reason)
    return JobState(job_id, state, reason, status >> 8, status & 0x7F)


def exit_info(job: JobState) -> ExitInfo:
    """The run's end for a job that ended; ``reason`` names Slurm's state and reason."""
    code = _code(job)
    if job.state == "COMPLETED" and code in (0, None):
        return ExitInfo(RunStatus.FINISHED, 0)
    if job.state == "CANCELLED":
        return ExitInfo(RunStatus.KILLED, code, f"Slurm job {job.job_id} CANCELLED")
    return ExitInfo(RunStatus.FAILED, code, _failure(job, code))


def _code(job: JobState) -> int | None:
    if job.exit_signal:
        return 128 + job.exit_signal
    return job.exit_code


def _failure(job: JobState, code: int | None) -> str:
    where = f"Slurm job {job.job_id} {job.state}"
    if job.state in ("FAILED", "COMPLETED") and code == UNSHARED_EXIT:
        return (
            f"{where}: the compute node cannot see the run's environment or project "
            "(RUNNER_SLURM_SHARED_DIR, default RUNNER_HOME, must be on a filesystem the "
            "compute nodes share)"
        )
    if job.state == "FAILED" and job.exit_signal:
        name = _signal_name(job.exit_signal)
        return f"{where}: entry point killed by {name}"
    if job.state == "FAILED":
        return f"{where}: entry point exited with code {code}"
    if job.state == "TIMEOUT":
        return f"{where}: the time limit was reached"
    detail = f" ({job.reason})" if job.reason and job.reason != "None" else ""
    return f"{where}{detail}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
