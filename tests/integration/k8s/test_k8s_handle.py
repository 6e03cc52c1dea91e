"""The Job handle against the emulator, below the CLI: pull failures and out-of-memory kills."""

from __future__ import annotations

import time
from typing import Any

import pytest

from backends.kubernetes.config import settings
from backends.kubernetes.handle import JobHandle, JobRef
from backends.kubernetes.manifest import JobInput, generated_job, validate
from runner.status import RunStatus
from tests.k8s_emulator import Emulator

pytestmark = pytest.mark.docker


def _submit(k8s: Any, emulator: Emulator, image: str, command: str, **config: Any) -> JobHandle:
    job = generated_job(
        settings(config),
        JobInput("handle-test", image, command, {}, "/", labels={}),
    )
    validate(job)
    api = k8s.ApiClient()
    ref = JobRef(
        api,
        "default",
        job["metadata"]["name"],
        "handle-test",
        None,
        settings(config).pending_timeout,
    )
    handle = JobHandle(ref)
    k8s.BatchV1Api(api).create_namespaced_job("default", job)
    return handle


def test_an_image_that_cannot_be_pulled_fails_after_the_pending_timeout(
    k8s: Any, emulator: Emulator, registry: str
) -> None:
    missing = f"{registry}/runner-test/absent@sha256:{'0' * 64}"
    handle = _submit(k8s, emulator, missing, "true", pending_timeout="1s")
    assert list(handle.logs()) == []
    info = handle.wait(timeout=60)
    assert info.status is RunStatus.FAILED
    assert info.reason is not None
    assert info.reason.startswith(f'ImagePullBackOff: Back-off pulling image "{missing}"')
    assert info.reason.endswith("(pending for longer than 1s)")
    deadline = time.monotonic() + 30
    while emulator.store.list("Job", None)[0]:  # the stuck Job is not left queued
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_an_out_of_memory_kill_is_named_in_the_reason(
    k8s: Any, emulator: Emulator, python_image: str
) -> None:
    hog = "python -c 'b = bytearray(512 * 1024 * 1024); print(len(b))'"
    handle = _submit(k8s, emulator, python_image, hog, resources={"memory": "64Mi"})
    info = handle.wait(timeout=120)
    assert info.status is RunStatus.FAILED
    assert info.exit_code == 137
    assert info.reason == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit "
        "(the container was OOMKilled)"
    )
