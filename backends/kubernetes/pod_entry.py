"""A scheduled run's pod: record the run on the tracking server, run the command, record the end.

Standard library only: it is copied into every pod image as ``/runner/lib/runner_schedule.py``
and runs with the image's own Python. ``RUNNER_SCHEDULE`` (JSON) says what to record; the Job's
name makes the create idempotent, so a retried pod of the same Job reuses the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

HEARTBEAT_SECONDS = 15.0


def _call(path: str, body: dict[str, Any]) -> dict[str, Any]:
    base = os.environ["RUNNER_TRACKING_URI"].rstrip("/")
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("RUNNER_TRACKING_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        data: dict[str, Any] = json.loads(answer.read() or b"{}")
        return data


def _create(schedule: dict[str, Any]) -> str:
    job = os.environ.get("RUNNER_JOB_NAME", "")
    namespace = os.environ.get("RUNNER_NAMESPACE", "")
    body = {
        **schedule["run"],
        "run_name": f"{schedule['name']}-{job.rpartition('-')[2]}",
        "tags": {"runner.schedule": schedule["name"], "runner.k8s_job": f"{namespace}/{job}"},
        # a pod's pid means nothing on any host: the heartbeat tells whether it lives
        "runner_host": f"pod:{namespace}/{os.environ.get('RUNNER_POD_NAME', '')}",
        "request_key": f"schedule:{namespace}/{job}",
    }
    run_id = str(_call("/api/runs", body)["run_id"])
    try:
        _call(f"/api/runs/{run_id}/start", {})
    except urllib.error.HTTPError as exc:  # a retried pod: the run started with the first
        if exc.code >= 500:
            raise
    return run_id


def _beat(run_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(OSError):  # the next beat may get through
            _call(f"/api/runs/{run_id}/heartbeat", {})


def main() -> int:
    schedule = json.loads(os.environ["RUNNER_SCHEDULE"])
    run_id = _create(schedule)
    print(f"runner: scheduled run {run_id} of {schedule['name']}", file=sys.stderr, flush=True)
    env = {**os.environ, "RUNNER_RUN_ID": run_id, "MLFLOW_RUN_ID": run_id}
    env.pop("RUNNER_SCHEDULE")
    stop = threading.Event()
    threading.Thread(target=_beat, args=(run_id, stop), daemon=True).start()
    code = subprocess.call(["/bin/sh", "-c", schedule["command"]], env=env)
    stop.set()
    status = "FINISHED" if code == 0 else "FAILED"
    reason = None if code == 0 else f"entry point exited with code {code}"
    _call(f"/api/runs/{run_id}/finish", {"status": status, "exit_code": code, "reason": reason})
    return code


if __name__ == "__main__":
    sys.exit(main())
