"""What the API server does to an object on create: validation and defaults."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.k8s_emulator.store import ApiError, Obj

SCHEMA_VERSION = "1.33"  # the schema the emulator checks what it accepts and serves against
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def schema_check(obj: Obj, what: str) -> None:
    """Strict OpenAPI validation, as the server's decoder does (unknown fields are refused)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ApiError(422, "Invalid", f"{what} is invalid: {path}: {exc.message}") from None


def _name_check(kind: str, name: str, limit: int) -> None:
    if len(name) > limit or not _DNS1123_SUBDOMAIN.match(name):
        raise ApiError(
            422,
            "Invalid",
            f'{kind}.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": '
            f"a lowercase RFC 1123 subdomain of at most {limit} characters is required",
        )


def _pod_spec_check(kind: str, name: str, spec: Obj, prefix: str) -> None:
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Never", "OnFailure"):
        raise ApiError(
            422,
            "Invalid",
            f'{kind}.batch "{name}" is invalid: {prefix}.restartPolicy: Required value: '
            'valid values: "OnFailure", "Never"',
        )
    for container in spec.get("containers") or []:
        if not _DNS1123_LABEL.match(container.get("name", "")):
            raise ApiError(422, "Invalid", f"{prefix}.containers.name: Invalid value")
        if not container.get("image"):
            raise ApiError(422, "Invalid", f"{prefix}.containers.image: Required value")


def job_defaults(job: Obj) -> Obj:
    """Validate a Job and add what the server adds: selector, labels, defaults, ``status: {}``."""
    name = job["metadata"].get("name") or job["metadata"].get("generateName", "") + "xxxxx"
    _name_check("Job", name, 63)
    spec = job["spec"]
    template = spec["template"]
    _pod_spec_check("Job", name, template["spec"], "spec.template.spec")
    uid = job["metadata"]["uid"] = str(uuid.uuid4())
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": job["metadata"]["name"],
        "controller-uid": uid,
        "job-name": job["metadata"]["name"],
    }
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    job["metadata"]["labels"] = {**labels, **(job["metadata"].get("labels") or {})}
    _pod_defaults(template["spec"])
    job["status"] = {}
    return job


def _pod_defaults(spec: Obj) -> None:
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        container.setdefault("imagePullPolicy", _default_pull_policy(container["image"]))
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")


def _default_pull_policy(image: str) -> str:
    if "@" in image:
        return "IfNotPresent"
    tag = image.rpartition("/")[2].partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def cronjob_defaults(cron: Obj) -> Obj:
    name = cron["metadata"]["name"]
    _name_check("CronJob", name, 52)
    spec = cron["spec"]
    if len(spec.get("schedule", "").split()) != 5:
        raise ApiError(
            422,
            "Invalid",
            f'CronJob.batch "{name}" is invalid: spec.schedule: Invalid value: '
            f'"{spec.get("schedule", "")}": expected exactly 5 fields',
        )
    job_spec = spec["jobTemplate"]["spec"]
    _pod_spec_check(
        "CronJob", name, job_spec["template"]["spec"], "spec.jobTemplate.spec.template.spec"
    )
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    cron["status"] = {}
    return cron


def pod_for_create(pod: Obj) -> Obj:
    _pod_defaults(pod["spec"])
    pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    return pod


def strip_server_fields(obj: Obj) -> Obj:
    """What a client may not set: uid, resourceVersion, timestamps and status."""
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
        meta.pop(key, None)
    obj.pop("status", None)
    return obj
