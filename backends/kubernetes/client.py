"""The cluster connection: the official client from a kubeconfig, and errors a user can act on."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from backends.kubernetes.config import Settings
from runner.errors import BackendError

_CONFIG_HINT = (
    "point KUBECONFIG (or the backend config's kubeconfig) at a valid kubeconfig, and "
    "kube-context at one of its contexts; `kubectl config get-contexts` lists them"
)


def connect(settings: Settings) -> Any:
    """An ``ApiClient`` for the configured kubeconfig and context (nothing is contacted yet)."""
    from kubernetes import config

    try:
        return config.new_client_from_config(
            config_file=settings.kubeconfig, context=settings.context
        )
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        raise BackendError(f"cannot load the Kubernetes config: {exc}", hint=_CONFIG_HINT) from exc


def status_message(exc: Any) -> str:
    """The API server's own message from an ApiException's ``kind: Status`` body."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or exc)


@contextlib.contextmanager
def api_errors(action: str, api: Any) -> Iterator[None]:
    """ApiException and connection errors as one BackendError naming the cluster."""
    import urllib3.exceptions
    from kubernetes.client.rest import ApiException

    host = api.configuration.host
    try:
        yield
    except ApiException as exc:
        raise BackendError(f"{action} failed ({exc.status}): {status_message(exc)}") from exc
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BackendError(
            f"{action} failed: cannot reach the Kubernetes API at {host}: {reason}",
            hint="check that the cluster is up and the kubeconfig's server address is right",
        ) from exc
