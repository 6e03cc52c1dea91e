"""Fixtures for the Kubernetes tests: the API emulator, a local registry, the real client."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.errors import BackendError
from tests.docker_images import ImageUnavailable, ensure_busybox_image, ensure_python_image
from tests.k8s_emulator import Emulator
from tests.k8s_emulator.kubelet import LABEL
from tests.k8s_emulator.registry import RegistryUnavailable, local_registry


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from backends.docker.client import connect

    try:
        return connect()
    except BackendError as exc:
        pytest.skip(f"no Docker Engine answers: {exc.message}")


@pytest.fixture(scope="session")
def python_image(docker_client: Any) -> str:
    try:
        return ensure_python_image(docker_client)
    except ImageUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    try:
        return ensure_busybox_image(docker_client)
    except ImageUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with local_registry(tmp_path_factory.mktemp("registry")) as address:
            yield address
    except RegistryUnavailable as exc:
        pytest.skip(str(exc))


def _emulator_containers(client: Any, cluster: Emulator) -> list[str]:
    """The containers of ``cluster``'s pods: other sessions' emulators share the engine."""
    found = client.api.containers(all=True, filters={"label": f"{LABEL}=true"})
    ours = cluster.kubelet.pod_uids()
    return [c["Id"] for c in found if (c.get("Labels") or {}).get("pod-uid") in ours]


@pytest.fixture
def emulator(docker_client: Any) -> Iterator[Emulator]:
    """A fresh cluster per test; no container of it may be left behind."""
    cluster = Emulator(docker_client).start()
    yield cluster
    cluster.close()
    left = _emulator_containers(docker_client, cluster)
    for container in left:
        docker_client.api.remove_container(container, force=True)
    assert left == [], f"the emulator left containers behind: {left}"


@pytest.fixture
def kubeconfig(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The emulator's kubeconfig, as KUBECONFIG (the path a user's tools take)."""
    path = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def k8s(kubeconfig: Path) -> Any:
    """The official client, configured through load_kube_config as a user's code would be."""
    from kubernetes import client, config

    config.load_kube_config(config_file=str(kubeconfig))
    return client


@pytest.fixture(scope="session")
def host_address() -> str:
    """An address of this machine that is not loopback (pods use the host's network here)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
            address = str(probe.getsockname()[0])
    except OSError as exc:
        pytest.skip(f"this machine has no route off loopback: {exc}")
    if address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    return address


@pytest.fixture
def config(
    tmp_path: Path, kubeconfig: Path, registry: str, host_address: str
) -> Callable[..., Path]:
    """Writes the backend's config for the emulator and the registry; ``extra`` keys win."""

    def write(**extra: Any) -> Path:
        path = tmp_path / "k8s.json"
        body = {
            "kubeconfig": str(kubeconfig),
            "repository-uri": f"{registry}/runner-test/k8s",
            "tracking-uri": f"http://{host_address}:9",  # nothing listens: logging warns
            **extra,
        }
        path.write_text(json.dumps(body))
        return path

    return write
