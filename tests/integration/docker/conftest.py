"""Fixtures for the Docker backend tests: a real engine, local base images, leak accounting.

Everything these tests create is named with the session's prefix, so the leak check and the
cleanup never touch containers or images of anyone else using the same engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backends.docker.build import LABEL_MANAGED, LABEL_RUN_ID
from runner.errors import BackendError
from tests.docker_images import (
    ENV_KEY_PREFIX,
    PROJECT_PREFIX,
    RUN_PREFIX,
    ImageUnavailable,
    ensure_busybox_image,
    ensure_python_image,
)


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from backends.docker.client import connect

    try:
        return connect()
    except BackendError as exc:
        pytest.skip(f"no Docker Engine answers: {exc.message}")


def _ours(client: Any) -> list[str]:
    # one API call (containers.list() inspects each one and races with removals)
    containers = client.api.containers(all=True, filters={"label": f"{LABEL_MANAGED}=true"})
    run_ids = [(c.get("Labels") or {}).get(LABEL_RUN_ID, "") for c in containers]
    return [run_id for run_id in run_ids if run_id.startswith(RUN_PREFIX)]


def _our_images(client: Any) -> list[Any]:
    images = client.images.list(filters={"label": f"{LABEL_MANAGED}=true"})
    prefixes = (f"runner/{PROJECT_PREFIX}", f"runner-env:{ENV_KEY_PREFIX[:16]}")
    return [i for i in images if any(t.startswith(prefixes) for t in i.tags)]


@pytest.fixture(scope="session", autouse=True)
def no_leaks(docker_client: Any) -> Iterator[None]:
    """No container of this session is left behind; its code/env images are removed after."""
    from backends.docker.backend import reconcile_runs

    assert _ours(docker_client) == []
    yield
    leaked = _ours(docker_client)
    reconcile_runs(leaked, grace=0)  # clean up first, then report
    for image in _our_images(docker_client):
        docker_client.images.remove(image.id, force=True)
    assert leaked == [], f"containers left behind: {leaked}"


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    try:
        return ensure_busybox_image(docker_client)
    except ImageUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def python_image(docker_client: Any) -> str:
    try:
        return ensure_python_image(docker_client)
    except ImageUnavailable as exc:
        pytest.skip(str(exc))
