"""The emulator's own conformance: what it serves is what a real API server would send.

Driven by the unmodified official client through a kubeconfig; every object it serves
validates strictly against the Kubernetes OpenAPI schema, and the client's strict models
deserialize it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client.rest import ApiException

from tests.k8s_emulator import Emulator
from tests.k8s_emulator.objects import SCHEMA_VERSION
from tests.k8s_emulator.server import ORPHAN_WARNING

pytestmark = pytest.mark.docker


def _job(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"suite": "conformance"}},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",  # a :latest tag means Always
                            "command": ["sh", "-c", script],
                        }
                    ],
                }
            },
        },
    }


def _wait_job(k8s: Any, name: str, timeout: float = 60) -> Any:
    batch = k8s.BatchV1Api()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = batch.read_namespaced_job_status(name, "default")
        for cond in job.status.conditions or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                return job
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish")


def _pods(k8s: Any, job: str) -> list[Any]:
    return k8s.CoreV1Api().list_namespaced_pod("default", label_selector=f"job-name={job}").items


def test_served_objects_validate_strictly(k8s: Any, busybox_image: str) -> None:
    k8s.BatchV1Api().create_namespaced_job("default", _job("ok", busybox_image, "echo hi"))
    _wait_job(k8s, "ok")
    served = [
        k8s.ApiClient().sanitize_for_serialization(obj)
        for obj in [
            k8s.BatchV1Api().read_namespaced_job("ok", "default"),
            *_pods(k8s, "ok"),
        ]
    ]
    for obj, kind in zip(served, ["Job", "Pod"], strict=True):
        obj.setdefault("apiVersion", "batch/v1" if kind == "Job" else "v1")
        obj.setdefault("kind", kind)
        assert kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True) == SCHEMA_VERSION
    job, pod = served
    assert job["status"]["succeeded"] == 1
    assert [c["type"] for c in job["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert pod["metadata"]["labels"]["job-name"] == "ok"


def test_logs_follow_while_running_and_exit_codes_are_real(k8s: Any, busybox_image: str) -> None:
    script = "echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three; exit 3"
    k8s.BatchV1Api().create_namespaced_job("default", _job("logs", busybox_image, script))
    core = k8s.CoreV1Api()
    deadline = time.monotonic() + 30
    while True:
        pods = _pods(k8s, "logs")
        if pods and pods[0].status.phase == "Running":
            break
        assert time.monotonic() < deadline, "the pod never ran"
        time.sleep(0.05)
    stream = core.read_namespaced_pod_log(
        pods[0].metadata.name, "default", follow=True, _preload_content=False
    )
    text = b"".join(stream.stream(64)).decode()
    assert text == "one\ntwo\nthree\n"
    job = _wait_job(k8s, "logs")
    assert job.status.conditions[-1].reason == "BackoffLimitExceeded"
    pod = _pods(k8s, "logs")[0]
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3
    assert core.read_namespaced_pod_log(pod.metadata.name, "default") == "one\ntwo\nthree\n"


def test_backoff_limit_gives_one_pod_per_attempt(k8s: Any, busybox_image: str) -> None:
    k8s.BatchV1Api().create_namespaced_job(
        "default", _job("retry", busybox_image, "echo boom; exit 2", backoffLimit=2)
    )
    job = _wait_job(k8s, "retry")
    assert job.status.failed == 3
    assert job.status.conditions[-1].type == "Failed"
    assert job.status.conditions[-1].reason == "BackoffLimitExceeded"
    pods = _pods(k8s, "retry")
    assert len(pods) == 3
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {2}


def test_pod_failure_policy_ignores_evictions(
    k8s: Any, emulator: Emulator, busybox_image: str
) -> None:
    policy = {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }
    k8s.BatchV1Api().create_namespaced_job(
        "default",
        _job("evict", busybox_image, "sleep 1; echo done", podFailurePolicy=policy),
    )
    deadline = time.monotonic() + 30
    while not _pods(k8s, "evict"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    emulator.evict("default", _pods(k8s, "evict")[0].metadata.name)
    job = _wait_job(k8s, "evict")
    assert job.status.conditions[-1].type == "Complete"
    phases = sorted(p.status.phase for p in _pods(k8s, "evict"))
    assert phases == ["Failed", "Succeeded"]
    assert not job.status.failed  # the disruption did not count against backoffLimit 0


def test_active_deadline_fails_the_job(k8s: Any, busybox_image: str) -> None:
    k8s.BatchV1Api().create_namespaced_job(
        "default", _job("slow", busybox_image, "sleep 30", activeDeadlineSeconds=1)
    )
    job = _wait_job(k8s, "slow", timeout=20)
    assert job.status.conditions[-1].reason == "DeadlineExceeded"


def test_invalid_jobs_are_refused_with_the_servers_message(
    k8s: Any, emulator: Emulator, busybox_image: str
) -> None:
    batch = k8s.BatchV1Api()
    always = _job("always", busybox_image, "true")
    always["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as refused:
        batch.create_namespaced_job("default", always)
    assert refused.value.status == 422
    assert "spec.template.spec.restartPolicy" in refused.value.body
    # the client's models refuse an unknown field themselves: send it as raw HTTP
    typo = _job("typo", busybox_image, "true")
    typo["spec"]["backoffLimt"] = 1
    request = urllib.request.Request(
        f"{emulator.url}/apis/batch/v1/namespaces/default/jobs",
        data=json.dumps(typo).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(request, timeout=10)
    assert unknown.value.code == 422
    assert "backoffLimt" in json.loads(unknown.value.read())["message"]
    batch.create_namespaced_job("default", _job("twice", busybox_image, "true"))
    with pytest.raises(ApiException) as conflict:
        batch.create_namespaced_job("default", _job("twice", busybox_image, "true"))
    assert conflict.value.status == 409
    assert '"reason": "AlreadyExists"' in conflict.value.body


def test_delete_orphans_by_default_and_background_cascades(
    k8s: Any, emulator: Emulator, busybox_image: str
) -> None:
    batch, core = k8s.BatchV1Api(), k8s.CoreV1Api()
    for name in ("orphan", "cascade"):
        batch.create_namespaced_job("default", _job(name, busybox_image, "sleep 60"))
    deadline = time.monotonic() + 30
    while (
        not all(
            p.status.phase == "Running"
            for n in ("orphan", "cascade")
            for p in _pods(k8s, n) or [None]
            if p is not None
        )
        or len(core.list_namespaced_pod("default").items) < 2
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _, _, headers = batch.delete_namespaced_job_with_http_info("orphan", "default")
    assert headers["Warning"] == ORPHAN_WARNING
    batch.delete_namespaced_job(
        "cascade", "default", body=k8s.V1DeleteOptions(propagation_policy="Background")
    )
    deadline = time.monotonic() + 30
    while _pods(k8s, "cascade"):
        assert time.monotonic() < deadline, "background propagation left pods"
        time.sleep(0.1)
    orphans = _pods(k8s, "orphan")
    assert len(orphans) == 1
    assert orphans[0].status.phase == "Running"
    assert orphans[0].metadata.owner_references is None
    core.delete_namespaced_pod(orphans[0].metadata.name, "default", grace_period_seconds=0)


def test_watch_resumes_expires_and_filters(
    k8s: Any, emulator: Emulator, busybox_image: str
) -> None:
    from kubernetes import watch

    batch = k8s.BatchV1Api()
    listed = batch.list_namespaced_job("default")
    batch.create_namespaced_job("default", _job("seen", busybox_image, "true"))
    batch.create_namespaced_job("default", _job("other", busybox_image, "true"))
    events = watch.Watch().stream(
        batch.list_namespaced_job,
        "default",
        field_selector="metadata.name=seen",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=2,
    )
    names = {e["object"].metadata.name for e in events}
    assert names == {"seen"}
    emulator.compact()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            batch.list_namespaced_job, "default", resource_version=listed.metadata.resource_version
        ):
            pass
    assert gone.value.status == 410


def test_a_dropped_watch_is_an_error_the_client_sees(k8s: Any, emulator: Emulator) -> None:
    from kubernetes import watch

    batch = k8s.BatchV1Api()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for _ in watch.Watch().stream(batch.list_namespaced_job, "default", timeout_seconds=30):
                pass
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 10
    while not emulator.open_watches:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    emulator.drop_watches()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert len(errors) == 1
    assert "ProtocolError" in repr(errors[0])


def test_unschedulable_pods_stay_pending_with_the_reason(k8s: Any, busybox_image: str) -> None:
    job = _job("gpu", busybox_image, "true")
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": "1"}
    }
    k8s.BatchV1Api().create_namespaced_job("default", job)
    deadline = time.monotonic() + 10
    while True:
        pods = _pods(k8s, "gpu")
        conditions = (pods[0].status.conditions or []) if pods else []
        if conditions and conditions[0].reason == "Unschedulable":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert conditions[0].message == "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    assert pods[0].status.phase == "Pending"


def test_logs_of_a_pod_not_started_are_a_400(k8s: Any, busybox_image: str) -> None:
    job = _job("pending", busybox_image, "true")
    job["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    k8s.BatchV1Api().create_namespaced_job("default", job)
    deadline = time.monotonic() + 10
    while not _pods(k8s, "pending"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(ApiException) as refused:
        k8s.CoreV1Api().read_namespaced_pod_log(_pods(k8s, "pending")[0].metadata.name, "default")
    assert refused.value.status == 400
    assert "is waiting to start: ContainerCreating" in refused.value.body


def test_cronjob_fires_on_demand(k8s: Any, emulator: Emulator, busybox_image: str) -> None:
    job = _job("unused", busybox_image, "echo fired")
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job["spec"]}},
    }
    k8s.BatchV1Api().create_namespaced_cron_job("default", cron)
    first = emulator.fire("default", "nightly")["metadata"]["name"]
    second = emulator.fire("default", "nightly")["metadata"]["name"]
    assert first != second
    for name in (first, second):
        assert _wait_job(k8s, name).status.succeeded == 1
    listed = k8s.BatchV1Api().list_namespaced_cron_job("default").items
    assert listed[0].status.last_schedule_time is not None
    served = k8s.ApiClient().sanitize_for_serialization(listed[0])
    served.update(apiVersion="batch/v1", kind="CronJob")
    assert kubernetes_validate.validate(served, SCHEMA_VERSION, strict=True) == SCHEMA_VERSION
    k8s.BatchV1Api().delete_namespaced_cron_job("nightly", "default")
    deadline = time.monotonic() + 10
    while k8s.BatchV1Api().list_namespaced_job("default").items:
        assert time.monotonic() < deadline, "the CronJob's Jobs outlived it"
        time.sleep(0.1)
