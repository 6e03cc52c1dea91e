"""What a Job and its pods say: exit codes, why a pod does not start, how the Job ended."""

from __future__ import annotations

import time
from typing import Any

from runner.backend import ExitInfo
from runner.status import RunStatus

_PENDING_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}


def epoch(stamp: Any) -> float:
    return stamp.timestamp() if stamp is not None else time.time()


def exit_code(pod: Any) -> int | None:
    for status in pod.status.container_statuses or []:
        if status.state and status.state.terminated:
            return int(status.state.terminated.exit_code)
    return None


def _terminated_reason(pod: Any) -> str | None:
    for status in pod.status.container_statuses or []:
        if status.state and status.state.terminated:
            return str(status.state.terminated.reason or "")
    return None


def started(pod: Any) -> bool:
    return any(
        s.state and (s.state.running or s.state.terminated)
        for s in pod.status.container_statuses or []
    )


def pending_problem(pod: Any) -> str | None:
    """Why a Pending pod does not start (Unschedulable, ImagePullBackOff...), if it is stuck."""
    if pod.status.phase != "Pending":
        return None
    for cond in pod.status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            return f"{cond.reason}: {cond.message}"
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason in _PENDING_REASONS:
            return f"{waiting.reason}: {waiting.message}"
    return None


def job_outcome(job: Any, pods: list[Any]) -> ExitInfo | None:
    """FINISHED or FAILED from the Job's conditions, with the last attempt's exit code."""
    codes = [exit_code(p) for p in sorted(pods, key=attempt_order)]
    code = next((c for c in reversed(codes) if c is not None), None)
    for cond in job.status.conditions or [] if job.status else []:
        if cond.status != "True":
            continue
        if cond.type == "Complete":
            return ExitInfo(RunStatus.FINISHED, 0 if code is None else code)
        if cond.type == "Failed":
            oom = any(_terminated_reason(p) == "OOMKilled" for p in pods)
            detail = " (the container was OOMKilled)" if oom else ""
            return ExitInfo(RunStatus.FAILED, code, f"{cond.reason}: {cond.message}{detail}")
    return None


def attempt_order(pod: Any) -> tuple[float, float, str]:
    """Pods by age. Timestamps have one-second resolution, so within a second the one whose
    container started first comes first (a Job replaces a pod only after it ended)."""
    started = pod.status.start_time if pod.status else None
    return (epoch(pod.metadata.creation_timestamp), epoch(started), pod.metadata.name)
