"""The Docker daemon connection: one clear error when it cannot be reached or goes away."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import BackendError

DEFAULT_HOST = "unix:///var/run/docker.sock"
_UNREACHABLE_HINT = (
    "start the Docker daemon, or point DOCKER_HOST (or the backend config's docker_host) "
    "at a running one; `docker info` should answer"
)


def daemon_url(config: Mapping[str, Any], env: Mapping[str, str]) -> str:
    return str(config.get("docker_host") or env.get("DOCKER_HOST") or DEFAULT_HOST)


def root_cause(exc: BaseException) -> str:
    """The innermost reason in an exception chain (requests nests the OSError in its args)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nested = [a for a in exc.args if isinstance(a, BaseException)]
        inner = exc.__cause__ or exc.__context__ or (nested[-1] if nested else None)
        if inner is None:
            break
        exc = inner
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def connect(config: Mapping[str, Any] | None = None, *, streaming: bool = False) -> Any:
    """A client whose daemon answered a ping; otherwise one clear BackendError.

    A ``streaming`` client has no read timeout: it serves the attach and wait calls, which
    block for the run's whole lifetime (docker-py#2964).
    """
    import docker

    config = config or {}
    url = daemon_url(config, os.environ)
    timeout = None if streaming else config.get("api_timeout", 60)
    try:
        if "docker_host" in config:
            client = docker.DockerClient(base_url=url, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises DockerException or raw requests/urllib3 errors
        reason = root_cause(exc)
        message = f"cannot reach the Docker daemon at {url}: {reason}"
        raise BackendError(message, hint=_UNREACHABLE_HINT) from exc
    return client


def bridge_gateway(config: Mapping[str, Any]) -> str:
    """The host's address on the default bridge network (what ``host-gateway`` resolves to)."""
    client = connect(config)
    try:
        with api_errors("reading the bridge network"):
            ipam = client.api.inspect_network("bridge").get("IPAM") or {}
    finally:
        client.close()
    for entry in ipam.get("Config") or ():
        if entry.get("Gateway"):
            return str(entry["Gateway"])
        if entry.get("Subnet") and ":" not in entry["Subnet"]:
            # the default bridge often lists no gateway: dockerd gives the bridge the first
            # address of its subnet (172.17.0.1 of 172.17.0.0/16)
            import ipaddress

            return str(next(ipaddress.ip_network(entry["Subnet"], strict=False).hosts()))
    raise BackendError(
        "the Docker bridge network has no gateway address, so a container cannot reach a "
        "server on this host",
        hint="use -A network=host, or run the tracking server on an address containers reach",
    )


@contextlib.contextmanager
def api_errors(action: str) -> Iterator[None]:
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.APIError as exc:
        raise BackendError(f"{action} failed: {exc.explanation or exc}") from exc
    except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
        reason = root_cause(exc)
        raise BackendError(f"{action} failed: lost the Docker daemon: {reason}") from exc
