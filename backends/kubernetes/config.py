"""The Kubernetes backend's config (``-c k8s.yaml``): its schema, durations and checked settings."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from backends.docker.build import CONFIG_SCHEMA as DOCKER_SCHEMA
from runner.errors import BackendError

TRACKING_URI_VAR = "RUNNER_K8S_TRACKING_URI"
GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

_DURATION_SCHEMA = {
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$"},
    ]
}
_QUANTITY = {"type": ["string", "number"]}
_DOCKER_KEYS = ("image_override", "base_image", "build_timeout", "docker_host", "api_timeout")

CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # MLflow's keys, unchanged
        "kube-context": {"type": "string", "minLength": 1},
        "namespace": {"type": "string", "minLength": 1},
        "repository-uri": {"type": "string", "minLength": 1},
        "kube-job-template-path": {"type": "string", "minLength": 1},
        # runner's own
        "kubeconfig": {"type": "string", "minLength": 1},
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cpu": _QUANTITY,
                "memory": _QUANTITY,
                "gpu": {"type": "integer", "minimum": 0},
                "gpu-vendor": {"enum": sorted(GPU_RESOURCES)},
            },
        },
        "node_selector": {"type": "object", "additionalProperties": {"type": "string"}},
        "tolerations": {"type": "array", "items": {"type": "object"}},
        "image_pull_secrets": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "service_account": {"type": "string", "minLength": 1},
        "retries": {"type": "integer", "minimum": 0},
        "timeout": _DURATION_SCHEMA,
        "pending_timeout": _DURATION_SCHEMA,
        "ttl_after_finished": _DURATION_SCHEMA,
        "tracking-uri": {"type": "string", "minLength": 1},
        # how the image is built (the Docker backend's builder)
        **{key: DOCKER_SCHEMA["properties"][key] for key in _DOCKER_KEYS},
    },
}


def seconds(value: Any, key: str) -> int:
    """``90s``, ``10m``, ``2h``, ``1d`` or a number of seconds, as whole seconds."""
    match = _DURATION.match(str(value))
    if match is None or isinstance(value, bool):
        raise BackendError(
            f"{key}: {value!r} is not a duration", hint="write 90s, 10m, 2h or a number of seconds"
        )
    return round(float(match[1]) * _SECONDS[match[2]])


@dataclass(frozen=True)
class Settings:
    """The checked config of one run."""

    namespace: str = "default"
    context: str | None = None
    kubeconfig: str | None = None
    repository: str | None = None
    template_path: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    retries: int = 0
    timeout: int | None = None
    pending_timeout: int = 600
    ttl_after_finished: int | None = None
    tracking_uri: str | None = None


def settings(config: Mapping[str, Any]) -> Settings:
    """The settings of ``config`` (already checked against CONFIG_SCHEMA)."""

    def duration(key: str) -> int | None:
        return seconds(config[key], key) if key in config else None

    return Settings(
        namespace=str(config.get("namespace", "default")),
        context=config.get("kube-context"),
        kubeconfig=config.get("kubeconfig"),
        repository=config.get("repository-uri"),
        template_path=config.get("kube-job-template-path"),
        resources=dict(config.get("resources") or {}),
        node_selector=dict(config.get("node_selector") or {}),
        tolerations=tuple(config.get("tolerations") or ()),
        pull_secrets=tuple(config.get("image_pull_secrets") or ()),
        service_account=config.get("service_account"),
        retries=int(config.get("retries", 0)),
        timeout=duration("timeout"),
        pending_timeout=duration("pending_timeout") or 600,
        ttl_after_finished=duration("ttl_after_finished"),
        tracking_uri=config.get("tracking-uri") or os.environ.get(TRACKING_URI_VAR),
    )


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "0.0.0.0") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(a.is_loopback or a.is_unspecified for a in (address, mapped) if a is not None)


def pod_tracking_uri(given: str | None, store_uri: str) -> str:
    """The tracking URI a pod can reach: an http(s) URL of a server not on loopback.

    Pods run on other machines: a database path or a 127.0.0.1 URL names something that is
    not there, so the run is refused before anything is built, pushed or submitted."""
    uri = given or store_uri
    origin = "tracking-uri" if given else "the tracking store (RUNNER_TRACKING_URI)"
    hint = (
        "start `runner server` where the cluster can reach it and give its URL as "
        f"tracking-uri in the backend config (or {TRACKING_URI_VAR}), e.g. "
        "http://tracking.example.internal:5000"
    )
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        raise BackendError(
            f"pods cannot log to {origin} {uri!r}: a pod needs an http(s) tracking server",
            hint=hint,
        )
    if not parts.hostname or _is_loopback(parts.hostname):
        raise BackendError(
            f"pods cannot log to {origin} {uri!r}: a loopback address in a pod is the pod "
            "itself, not this machine",
            hint=hint,
        )
    return uri
