"""The emulator's control loop: scheduler, Job controller, garbage collector, TTL, CronJobs.

One thread ticks every 0.1 s. Differences from a real cluster, on purpose: a failed pod is
replaced at once (no 10 s, 20 s, 40 s... back-off), one node, one container per pod, and a
CronJob fires only when a test asks (``fire``), never on its schedule.
"""

from __future__ import annotations

import calendar
import contextlib
import copy
import threading
import time
from typing import Any

from tests.k8s_emulator.kubelet import NODE, Kubelet, unschedulable_reason
from tests.k8s_emulator.store import ApiError, Obj, Store, now

JOB_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name")
DISRUPTION = "DisruptionTarget"


def _epoch(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def _owner_ref(owner: Obj, kind: str) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _condition(type_: str, reason: str, message: str) -> Obj:
    stamp = now()
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }


def _finished(job: Obj) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in job["status"].get("conditions") or []
    )


def _exit_code(pod: Obj) -> int | None:
    for status in pod["status"].get("containerStatuses") or []:
        terminated = status["state"].get("terminated")
        if terminated:
            return int(terminated["exitCode"])
    return None


def _rule_matches(rule: Obj, pod: Obj) -> bool:
    for wanted in rule.get("onPodConditions") or []:
        for cond in pod["status"].get("conditions") or []:
            if cond["type"] == wanted["type"] and cond["status"] == wanted.get("status", "True"):
                return True
    codes = rule.get("onExitCodes")
    if codes:
        code = _exit_code(pod)
        inside = code in codes["values"]
        return code is not None and (inside if codes["operator"] == "In" else not inside)
    return False


def failure_action(job: Obj, pod: Obj) -> str:
    """What the Job's podFailurePolicy says of a failed pod (Count when no rule matches)."""
    for rule in (job["spec"].get("podFailurePolicy") or {}).get("rules") or []:
        if _rule_matches(rule, pod):
            return str(rule["action"])
    return "Count"


class Controllers:
    """Everything a control plane does on its own, in one loop."""

    def __init__(self, store: Store, kubelet: Kubelet, node_labels: dict[str, str]) -> None:
        self.store, self.kubelet = store, kubelet
        self.node_labels = node_labels
        self.capacity: dict[str, str] = {"cpu": "8", "memory": "32Gi", "pods": "110"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="k8s-controllers", daemon=True)
        self._fired: dict[str, int] = {}
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.tick()
            except ApiError:  # an object deleted mid-tick: next tick
                pass
            except Exception as exc:  # a bug of the emulator: kept for the fixture to report
                self.errors.append(repr(exc))

    def tick(self) -> None:
        pods, _ = self.store.list("Pod", None)
        for pod in pods:
            self._schedule(pod)
        jobs, _ = self.store.list("Job", None)
        for job in jobs:
            self._sync_job(job, [p for p in pods if _owned_by(p, job["metadata"]["uid"])])
        self._collect_garbage(pods, jobs)

    # -- scheduler + kubelet -----------------------------------------------------------------

    def _schedule(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if "deletionTimestamp" in meta or pod["status"].get("phase") != "Pending":
            return
        if spec.get("nodeName"):
            self.kubelet.start_pod(pod)
            return
        reason = unschedulable_reason(pod, self.node_labels, self.capacity)

        def bind(obj: Obj) -> None:
            if reason is None:
                obj["spec"]["nodeName"] = NODE
                cond = {"type": "PodScheduled", "status": "True"}
            else:
                cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
                cond["message"] = reason
            old = obj["status"].get("conditions") or [{}]
            stamp = (
                old[0].get("lastTransitionTime") if old[0].get("status") == cond["status"] else None
            )
            obj["status"]["conditions"] = [{**cond, "lastTransitionTime": stamp or now()}]

        self.store.update("Pod", meta["namespace"], meta["name"], bind)

    # -- Job controller --------------------------------------------------------------------

    def _sync_job(self, job: Obj, pods: list[Obj]) -> None:
        meta, spec = job["metadata"], job["spec"]
        if _finished(job) or "deletionTimestamp" in meta or spec.get("suspend"):
            return
        counted = [p for p in pods if p["status"].get("phase") == "Failed"]
        counted = [p for p in counted if failure_action(job, p) != "Ignore"]
        fail_job = [p for p in counted if failure_action(job, p) == "FailJob"]
        active = [p for p in pods if p["status"].get("phase") in ("Pending", "Running")]
        succeeded = [p for p in pods if p["status"].get("phase") == "Succeeded"]
        started = job["status"].get("startTime") or now()
        deadline = spec.get("activeDeadlineSeconds")
        end: Obj | None = None
        if succeeded:
            end = _condition(
                "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
            )
        elif fail_job:
            end = _condition("Failed", "PodFailurePolicy", "Container failed with a FailJob rule")
        elif len(counted) > spec.get("backoffLimit", 6):
            end = _condition(
                "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        elif deadline is not None and time.time() - _epoch(started) > deadline:
            end = _condition(
                "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
            )
        if end is not None:
            for pod in active:
                self.delete_pod(pod, grace=0)
            self._finish_job(job, end, len(succeeded), len(counted))
            return
        if not active:
            self._create_pod(job)
            active = [{}]
        self._job_status(job, started, len(active), len(succeeded), len(counted), pods)

    def _job_status(
        self, job: Obj, started: str, active: int, succeeded: int, failed: int, pods: list[Obj]
    ) -> None:
        ready = sum(
            1
            for p in pods
            for c in p["status"].get("conditions") or []
            if c["type"] == "Ready" and c["status"] == "True"
        )

        def change(obj: Obj) -> None:
            status = obj["status"]
            status.update(startTime=started, active=active, ready=ready)
            status.update({k: v for k, v in (("succeeded", succeeded), ("failed", failed)) if v})
            status.setdefault("uncountedTerminatedPods", {})

        meta = job["metadata"]
        self.store.update("Job", meta["namespace"], meta["name"], change)

    def _finish_job(self, job: Obj, end: Obj, succeeded: int, failed: int) -> None:
        def change(obj: Obj) -> None:
            status = obj["status"]
            target = "SuccessCriteriaMet" if end["type"] == "Complete" else "FailureTarget"
            status["conditions"] = [{**end, "type": target}, end]
            status["active"] = 0
            status.pop("ready", None)
            status.update({k: v for k, v in (("succeeded", succeeded), ("failed", failed)) if v})
            if end["type"] == "Complete":
                status["completionTime"] = now()

        meta = job["metadata"]
        self.store.update("Job", meta["namespace"], meta["name"], change)

    def _create_pod(self, job: Obj) -> None:
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.setdefault("metadata", {})
        meta["generateName"] = job["metadata"]["name"] + "-"
        meta.pop("name", None)
        meta["ownerReferences"] = [_owner_ref(job, "Job")]
        template["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        self.store.create("Pod", job["metadata"]["namespace"], template)

    # -- deletion, garbage collection, TTL -------------------------------------------------

    def delete_pod(self, pod: Obj, grace: float = 30) -> None:
        """Mark the pod terminating, stop its container, then remove the object."""
        meta = pod["metadata"]

        def mark(obj: Obj) -> None:
            obj["metadata"].setdefault("deletionTimestamp", now())
            obj["metadata"]["deletionGracePeriodSeconds"] = int(grace)

        with contextlib.suppress(ApiError):
            self.store.update("Pod", meta["namespace"], meta["name"], mark)

        def finish() -> None:
            self.kubelet.stop(meta["uid"], min(grace, 2))
            with contextlib.suppress(ApiError):
                self.store.delete("Pod", meta["namespace"], meta["name"])

        threading.Thread(target=finish, daemon=True).start()

    def _collect_garbage(self, pods: list[Obj], jobs: list[Obj]) -> None:
        job_uids = {j["metadata"]["uid"] for j in jobs}
        for pod in pods:
            refs = pod["metadata"].get("ownerReferences") or []
            dangling = refs and all(r["uid"] not in job_uids for r in refs)
            if dangling and "deletionTimestamp" not in pod["metadata"]:
                self.delete_pod(pod, grace=1)
        for job in jobs:
            self._expire(job)
            if "deletionTimestamp" in job["metadata"]:  # foreground: the owner goes last
                uid = job["metadata"]["uid"]
                if not any(_owned_by(p, uid) for p in pods):
                    with contextlib.suppress(ApiError):
                        self.store.delete(
                            "Job", job["metadata"]["namespace"], job["metadata"]["name"]
                        )
        cronjobs, _ = self.store.list("CronJob", None)
        cron_uids = {c["metadata"]["uid"] for c in cronjobs}
        for job in jobs:
            refs = [
                r for r in job["metadata"].get("ownerReferences") or [] if r["kind"] == "CronJob"
            ]
            if refs and all(r["uid"] not in cron_uids for r in refs):
                with contextlib.suppress(ApiError):
                    self.store.delete("Job", job["metadata"]["namespace"], job["metadata"]["name"])

    def _expire(self, job: Obj) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None or not _finished(job):
            return
        ended = [c["lastTransitionTime"] for c in job["status"]["conditions"]]
        if time.time() - _epoch(max(ended)) >= ttl:
            with contextlib.suppress(ApiError):
                self.store.delete("Job", job["metadata"]["namespace"], job["metadata"]["name"])

    def orphan(self, job: Obj) -> None:
        """What deleting a Job without a policy does: its pods lose their owner and stay."""
        uid = job["metadata"]["uid"]
        pods, _ = self.store.list("Pod", job["metadata"]["namespace"])
        for pod in pods:
            if _owned_by(pod, uid):

                def change(obj: Obj) -> None:
                    refs = obj["metadata"].get("ownerReferences") or []
                    obj["metadata"]["ownerReferences"] = [r for r in refs if r["uid"] != uid]
                    if not obj["metadata"]["ownerReferences"]:
                        del obj["metadata"]["ownerReferences"]

                with contextlib.suppress(ApiError):
                    self.store.update(
                        "Pod", pod["metadata"]["namespace"], pod["metadata"]["name"], change
                    )

    # -- test hooks ----------------------------------------------------------------------------

    def evict(self, namespace: str, name: str) -> None:
        """What the eviction API (or a preemption) does: DisruptionTarget, then the pod fails."""
        pod = self.store.get("Pod", namespace, name)

        def change(obj: Obj) -> None:
            obj["status"]["phase"] = "Failed"
            obj["status"]["reason"] = "Evicted"
            obj["status"]["message"] = "The node was low on resource: memory."
            obj["status"]["conditions"] = [
                *(obj["status"].get("conditions") or []),
                _condition(
                    DISRUPTION, "TerminationByKubelet", "The node was low on resource: memory."
                ),
            ]

        self.store.update("Pod", namespace, name, change)  # first: the kubelet keeps it
        self.kubelet.stop(pod["metadata"]["uid"], 0)

    def fire(self, namespace: str, name: str) -> Obj:
        """Start the CronJob's Job now, as the CronJob controller does on schedule."""
        cron = self.store.get("CronJob", namespace, name)
        count = self._fired[name] = self._fired.get(name, 0) + 1
        template = copy.deepcopy(cron["spec"]["jobTemplate"])
        meta: dict[str, Any] = template.setdefault("metadata", {})
        meta["name"] = f"{name}-{int(time.time() // 60) * 10 + count}"
        meta["ownerReferences"] = [_owner_ref(cron, "CronJob")]
        meta.setdefault("annotations", {})["batch.kubernetes.io/cronjob-scheduled-timestamp"] = (
            now()
        )
        job = {"apiVersion": "batch/v1", "kind": "Job", **template}
        from tests.k8s_emulator.objects import job_defaults

        created = self.store.create("Job", namespace, job_defaults(job))

        def change(obj: Obj) -> None:
            obj["status"]["lastScheduleTime"] = now()

        self.store.update("CronJob", namespace, name, change)
        return created
