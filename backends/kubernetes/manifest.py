"""Job manifests: generated from the settings, or from MLflow's job template; strictly validated."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.docker.build import container_command
from backends.kubernetes.config import GPU_RESOURCES, Settings
from backends.kubernetes.image import INPUTS_ENTRY
from backends.kubernetes.pod_inputs import INPUTS_VAR
from runner.errors import BackendError

LABEL_RUN_ID = "runner.dev/run-id"
LABEL_MANAGED = "runner.dev/managed"
LABEL_SCHEDULE = "runner.dev/schedule"
CONTAINER = "main"
# the versions whose OpenAPI schemas every manifest is checked against (README claims these)
SCHEMA_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35")
# disruptions (eviction, preemption, node drain) are not the entry point's failure
DISRUPTIONS_IGNORED = {
    "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    ]
}
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
# runs before the command when the run has runs:/ inputs; a failed fetch ends the pod with its
# exit code, so the entry point never runs on inputs that are not there
_FETCH_INPUTS = (
    f"if command -v python3 >/dev/null 2>&1; then python3 {INPUTS_ENTRY} || exit; "
    f"elif command -v python >/dev/null 2>&1; then python {INPUTS_ENTRY} || exit; "
    "else echo 'runner: runs:/ inputs are fetched with the Python of the image, which has "
    "neither python3 nor python' >&2; exit 127; fi; "
)


def job_name(run_id: str) -> str:
    """A DNS-1123 name derived from the run id alone, so a retried submit conflicts (409)."""
    slug = _NOT_DNS.sub("-", run_id.lower()).strip("-")
    name = f"runner-{slug}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{name[:52].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class JobInput:
    """What a Job needs besides the settings: who it is, what it runs, where."""

    run_id: str
    image: str
    command: str
    env: Mapping[str, str]
    working_dir: str
    labels: Mapping[str, str]
    # the local path each runs:/ input has in the command → its runs:/<full-run-id>/<path>
    inputs: Mapping[str, str] = field(default_factory=dict)


def container_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """cpu/memory as requests and limits; GPUs as the vendor's extended resource (limits only,
    which Kubernetes copies to requests)."""
    amounts = {k: str(resources[k]) for k in ("cpu", "memory") if k in resources}
    limits = dict(amounts)
    if resources.get("gpu"):
        limits[gpu_resource(resources)] = str(resources["gpu"])
    out: dict[str, Any] = {}
    if amounts:
        out["requests"] = amounts
    if limits:
        out["limits"] = limits
    return out


def gpu_resource(resources: Mapping[str, Any]) -> str:
    return GPU_RESOURCES[str(resources.get("gpu-vendor", "nvidia"))]


def _tolerations(settings: Settings) -> list[dict[str, Any]]:
    tolerations = [dict(t) for t in settings.tolerations]
    if settings.resources.get("gpu"):  # GPU nodes are usually tainted with the resource name
        gpu = {
            "key": gpu_resource(settings.resources),
            "operator": "Exists",
            "effect": "NoSchedule",
        }
        if gpu not in tolerations:
            tolerations.append(gpu)
    return tolerations


def _env(job: JobInput) -> list[dict[str, str]]:
    env = [{"name": k, "value": v} for k, v in job.env.items()]
    if job.inputs:
        env.append({"name": INPUTS_VAR, "value": json.dumps(dict(job.inputs), sort_keys=True)})
    return env


def pod_command(job: JobInput) -> list[str]:
    """The container's argv: the runs:/ inputs fetched (when there are any), then the
    rendered command, unchanged, as a container of the Docker backend runs it."""
    argv = container_command(job.command)
    if job.inputs:  # the script before the shell is picked; the command stays the last word
        argv[2] = _FETCH_INPUTS + argv[2]
    return argv


def _pod_spec(settings: Settings, job: JobInput) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": job.image,
        "imagePullPolicy": "IfNotPresent",
        "command": pod_command(job),
        "env": _env(job),
        "workingDir": job.working_dir,
    }
    resources = container_resources(settings.resources)
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if tolerations := _tolerations(settings):
        spec["tolerations"] = tolerations
    if settings.pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in settings.pull_secrets]
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    return spec


def generated_job(settings: Settings, job: JobInput) -> dict[str, Any]:
    """The Job runner submits when no template is given."""
    labels = {**job.labels, LABEL_RUN_ID: job.run_id, LABEL_MANAGED: "true"}
    spec: dict[str, Any] = {
        "backoffLimit": settings.retries,
        "podFailurePolicy": DISRUPTIONS_IGNORED,
        "template": {"metadata": {"labels": labels}, "spec": _pod_spec(settings, job)},
    }
    if settings.timeout is not None:
        spec["activeDeadlineSeconds"] = settings.timeout
    if settings.ttl_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = settings.ttl_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(job.run_id),
            "namespace": settings.namespace,
            "labels": labels,
        },
        "spec": spec,
    }


def load_template(path: str) -> dict[str, Any]:
    """MLflow's ``kube-job-template-path`` file (YAML), read safely."""
    from runner.errors import SpecError
    from runner.project.yamlsafe import load_yaml

    try:
        data = load_yaml(Path(path)).data
    except OSError as exc:
        raise BackendError(f"cannot read kube-job-template-path {path!r}: {exc.strerror}") from exc
    except SpecError as exc:
        raise BackendError(f"kube-job-template-path: {exc.message}") from exc
    if not isinstance(data, dict) or data.get("kind") != "Job":
        raise BackendError(f"kube-job-template-path {path!r} is not a Job manifest (kind: Job)")
    return data


def templated_job(template: Mapping[str, Any], settings: Settings, job: JobInput) -> dict[str, Any]:
    """MLflow's substitution: the Job's name, the first container's name, image and command are
    replaced and the run's variables appended to its env; everything else is the user's.

    Two differences, on purpose: the name comes from the run id (a retried submit is
    idempotent; MLflow's is a timestamp) and the command runs through a shell (MLflow passes
    the split words, quote characters included, to the program)."""
    manifest = copy.deepcopy(dict(template))
    try:
        container = manifest["spec"]["template"]["spec"]["containers"][0]
    except (KeyError, IndexError, TypeError):
        raise BackendError(
            "the job template has no spec.template.spec.containers[0] to run the entry point in"
        ) from None
    manifest.setdefault("metadata", {})["name"] = job_name(job.run_id)
    manifest["metadata"].setdefault("namespace", settings.namespace)
    labels = {LABEL_RUN_ID: job.run_id, LABEL_MANAGED: "true", **job.labels}
    manifest["metadata"]["labels"] = {**(manifest["metadata"].get("labels") or {}), **labels}
    pod_meta = manifest["spec"]["template"].setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    container["name"] = CONTAINER
    container["image"] = job.image
    container["command"] = pod_command(job)
    container.pop("args", None)
    container["env"] = [*(container.get("env") or []), *_env(job)]
    container.setdefault("workingDir", job.working_dir)
    return manifest


def validate(manifest: Mapping[str, Any], versions: tuple[str, ...] = SCHEMA_VERSIONS) -> None:
    """Strict OpenAPI validation for every claimed version (unknown fields are errors)."""
    import kubernetes_validate

    for version in versions:
        try:
            kubernetes_validate.validate(dict(manifest), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "<root>"
            raise BackendError(
                f"the {manifest.get('kind', 'manifest')} is invalid for Kubernetes {version}: "
                f"{where}: {exc.message}",
                hint="check the job template and the backend config against the Kubernetes API",
            ) from None
        _check_semantics(manifest)


def _check_semantics(manifest: Mapping[str, Any]) -> None:
    """What the API server checks that the schema cannot: a Job's pods must not restart."""
    spec = manifest.get("spec") or {}
    pod = (spec.get("jobTemplate", {}).get("spec", spec)).get("template", {}).get("spec", {})
    if pod.get("restartPolicy", "Always") not in ("Never", "OnFailure"):
        raise BackendError(
            "the job template's restartPolicy must be Never or OnFailure "
            f"(it is {pod.get('restartPolicy', 'Always (the default)')})"
        )


def to_yaml(manifests: list[Mapping[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all([dict(m) for m in manifests], sort_keys=False)
