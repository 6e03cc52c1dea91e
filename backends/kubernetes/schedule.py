"""Recurring runs: a CronJob whose pods record and run the pinned project (``runner_schedule``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.kubernetes.config import Settings
from backends.kubernetes.image import SCHEDULE_ENTRY
from backends.kubernetes.manifest import LABEL_MANAGED, LABEL_RUN_ID, LABEL_SCHEDULE, validate
from runner.errors import BackendError, UsageError

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
# the image's Python runs the entry (python3 where both exist)
_ENTRY = (
    f"if command -v python3 >/dev/null 2>&1; then exec python3 {SCHEDULE_ENTRY}; fi; "
    f"exec python {SCHEDULE_ENTRY}"
)
_DOWNWARD = {
    "RUNNER_JOB_NAME": "metadata.labels['batch.kubernetes.io/job-name']",
    "RUNNER_POD_NAME": "metadata.name",
    "RUNNER_NAMESPACE": "metadata.namespace",
}


def cronjob_name(name: str) -> str:
    """``runner-NAME``: a CronJob's name has at most 52 characters (its Jobs add a suffix)."""
    if not _NAME.match(name) or len(name) > 45:
        raise UsageError(
            f"schedule name {name!r} must be lowercase letters, digits and '-', at most 45 long",
            hint="it names a Kubernetes CronJob (runner-NAME)",
        )
    return f"runner-{name}"


def check_cron(cron: str) -> str:
    fields = cron.split()
    if len(fields) == 5 or (len(fields) == 1 and fields[0] in _MACROS):
        return " ".join(fields)
    raise UsageError(
        f"--cron {cron!r} is not a cron schedule: five fields (minute hour day month weekday) "
        "or @hourly, @daily, @weekly, @monthly, @yearly",
        hint="e.g. --cron '0 3 * * *' for 03:00 every day (the cluster's time zone)",
    )


@dataclass(frozen=True)
class ScheduleInput:
    name: str
    cron: str
    command: str  # the rendered entry point command
    run: Mapping[str, Any]  # what each firing records: experiment, parameters, source...


def cronjob_manifest(
    job: Mapping[str, Any], schedule: ScheduleInput, config: Settings
) -> dict[str, Any]:
    """The CronJob around ``job`` (a run's Job manifest): its pods run the schedule entry."""
    spec = json.loads(json.dumps(job["spec"]))  # a deep copy of plain data
    labels = {LABEL_MANAGED: "true", LABEL_SCHEDULE: schedule.name}
    pod = spec["template"]
    pod["metadata"]["labels"] = {
        k: v for k, v in {**pod["metadata"]["labels"], **labels}.items() if k != LABEL_RUN_ID
    }
    container = pod["spec"]["containers"][0]
    container["command"] = ["/bin/sh", "-c", _ENTRY]
    plain = [e for e in container["env"] if e["name"] not in ("RUNNER_RUN_ID", "MLFLOW_RUN_ID")]
    payload = {"name": schedule.name, "command": schedule.command, "run": dict(schedule.run)}
    downward = [
        {"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in _DOWNWARD.items()
    ]
    container["env"] = [
        *plain,
        {"name": "RUNNER_SCHEDULE", "value": json.dumps(payload)},
        *downward,
    ]
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(schedule.name),
            "namespace": config.namespace,
            "labels": labels,
        },
        "spec": {
            "schedule": schedule.cron,
            "concurrencyPolicy": "Forbid",  # a slow firing is not run twice at once
            "jobTemplate": {"metadata": {"labels": labels}, "spec": spec},
        },
    }
    validate(manifest)
    return manifest


def create(api: Any, manifest: Mapping[str, Any]) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from backends.kubernetes.client import api_errors

    name = manifest["metadata"]["name"]
    with api_errors(f"creating CronJob {name}", api):
        try:
            client.BatchV1Api(api).create_namespaced_cron_job(
                manifest["metadata"]["namespace"], dict(manifest)
            )
        except ApiException as exc:
            if exc.status == 409:
                raise BackendError(
                    f"schedule {manifest['metadata']['labels'][LABEL_SCHEDULE]!r} exists already",
                    hint="delete it first: runner schedule delete NAME -c ...",
                ) from exc
            raise


def listed(api: Any, config: Settings) -> list[dict[str, str]]:
    """The schedules runner made in the namespace: name, cron, last firing."""
    from kubernetes import client

    from backends.kubernetes.client import api_errors

    with api_errors("listing CronJobs", api):
        found = client.BatchV1Api(api).list_namespaced_cron_job(
            config.namespace, label_selector=f"{LABEL_SCHEDULE}"
        )
    rows = []
    for cron in found.items:
        last = cron.status.last_schedule_time if cron.status else None
        rows.append(
            {
                "name": (cron.metadata.labels or {}).get(LABEL_SCHEDULE, ""),
                "cron": cron.spec.schedule,
                "last_run": last.isoformat() if last else "",
                "suspended": "yes" if cron.spec.suspend else "no",
            }
        )
    return rows


def delete(api: Any, config: Settings, name: str) -> None:
    """The CronJob and its Jobs and pods (Background propagation)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from backends.kubernetes.client import api_errors

    options = client.V1DeleteOptions(propagation_policy="Background")
    with api_errors(f"deleting schedule {name!r}", api):
        try:
            client.BatchV1Api(api).delete_namespaced_cron_job(
                cronjob_name(name), config.namespace, body=options
            )
        except ApiException as exc:
            if exc.status == 404:
                raise BackendError(f"no schedule {name!r} in namespace {config.namespace}") from exc
            raise
