"""The emulator's one node: a scheduler check and a "kubelet" running pods on the Docker Engine.

Each scheduled pod's (single) container runs as a Docker container on the host network, from
its image as named in the pod (a ``127.0.0.1:5000/...@sha256:`` reference is pulled from the
local registry when the engine lacks it). Pod status follows the container: Pending
(ContainerCreating, ErrImagePull / ImagePullBackOff), Running, then Succeeded or Failed with
the real exit code and OOMKilled from Docker's state.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Any

from tests.k8s_emulator.store import ApiError, Obj, Store, now

NODE = "emulator-node"
LABEL = "runner.test.k8s-emulator"  # on every container the kubelet starts
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity as a number: "500m" → 0.5, "4Gi" → 4 * 2**30."""
    value = str(text)
    if value.endswith("m"):
        return float(value[:-1]) / 1000
    for suffix, factor in _UNITS.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def unschedulable_reason(pod: Obj, labels: dict[str, str], capacity: dict[str, str]) -> str | None:
    """Why the one node cannot take ``pod`` (the scheduler's message), or None if it can."""
    spec = pod["spec"]
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    for container in spec["containers"]:
        requests = {
            **((container.get("resources") or {}).get("limits") or {}),
            **((container.get("resources") or {}).get("requests") or {}),
        }
        for name, amount in requests.items():
            if quantity(amount) > quantity(capacity.get(name, "0")):
                return f"0/1 nodes are available: 1 Insufficient {name}."
    return None


_LABEL_PATH = re.compile(r"^metadata\.labels\['([^']+)'\]$")


def _env_value(pod: Obj, entry: Obj) -> str:
    """``value``, or the downward API's ``fieldRef`` (name, namespace, a label)."""
    if "valueFrom" not in entry:
        return str(entry.get("value", ""))
    path = entry["valueFrom"].get("fieldRef", {}).get("fieldPath", "")
    meta = pod["metadata"]
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta[path.split(".")[1]])
    if match := _LABEL_PATH.match(path):
        return str((meta.get("labels") or {}).get(match[1], ""))
    raise ApiError(
        400, "BadRequest", f"emulated kubelet: unsupported valueFrom {entry['valueFrom']}"
    )


def _container_options(pod: Obj) -> dict[str, Any]:
    container = pod["spec"]["containers"][0]
    options: dict[str, Any] = {
        "labels": {LABEL: "true", "pod-uid": pod["metadata"]["uid"]},
        "network_mode": "host",  # pods reach the tracking server and the API on 127.0.0.1
        "detach": True,
        "environment": {e["name"]: _env_value(pod, e) for e in container.get("env") or []},
    }
    if container.get("command"):  # command replaces ENTRYPOINT, args replaces CMD
        options["entrypoint"] = container["command"]
        options["command"] = container.get("args") or []
    elif container.get("args"):
        options["command"] = container["args"]
    if container.get("workingDir"):
        options["working_dir"] = container["workingDir"]
    memory = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    if memory:
        options["mem_limit"] = int(quantity(memory))
    return options


class Kubelet:
    """Runs pods that are bound to the node; one thread per pod."""

    def __init__(self, store: Store, docker: Any) -> None:
        self.store, self.docker = store, docker
        self.containers: dict[str, str] = {}  # pod uid → container id
        self._started: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False  # remove_all ran: a container created after it goes at once

    def start_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            if uid in self._started:
                return
            self._started.add(uid)
            thread = threading.Thread(target=self._run, args=(pod,), daemon=True)
            self._threads.append(thread)
        thread.start()

    def pod_uids(self) -> set[str]:
        """Every pod this kubelet started or stopped: its containers, among other emulators'."""
        with self._lock:
            return set(self._started)

    def _set_status(self, pod: Obj, **status: Any) -> None:
        """Update the pod's status unless it already ended (an eviction decided it)."""
        meta = pod["metadata"]

        def change(obj: Obj) -> None:
            if obj["status"].get("phase") in ("Succeeded", "Failed"):
                return
            obj["status"].update(status)

        with contextlib.suppress(ApiError):  # deleted meanwhile
            self.store.update("Pod", meta["namespace"], meta["name"], change)

    def _container_status(self, pod: Obj, state: Obj, image_id: str = "", **extra: Any) -> Obj:
        container = pod["spec"]["containers"][0]
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": image_id,
            "ready": "running" in state,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
            **extra,
        }

    def _run(self, pod: Obj) -> None:
        image = self._image(pod)
        if image is None:
            return
        try:
            container = self.docker.containers.create(image.id, **_container_options(pod))
        except Exception as exc:  # e.g. an entry point the image lacks
            waiting = {"waiting": {"reason": "CreateContainerError", "message": str(exc)}}
            self._set_status(pod, containerStatuses=[self._container_status(pod, waiting)])
            return
        with self._lock:
            closed = self._closed
            if not closed:
                self.containers[pod["metadata"]["uid"]] = container.id
        if closed:  # the cluster closed while this container was being created
            with contextlib.suppress(Exception):
                self.docker.api.remove_container(container.id, force=True)
            return
        if self._deleting(pod):
            return
        container.start()
        started = now()
        image_id = f"docker-pullable://{image.id}"
        running = {"running": {"startedAt": started}}
        self._set_status(
            pod,
            phase="Running",
            startTime=started,
            containerStatuses=[self._container_status(pod, running, image_id)],
            conditions=_conditions(ready=True),
        )
        code = container.wait()["StatusCode"]
        self._terminated(pod, container, code, started, image_id)

    def _terminated(self, pod: Obj, container: Any, code: int, started: str, image_id: str) -> None:
        with contextlib.suppress(Exception):
            container.reload()
        oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        state = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": now(),
                "containerID": f"docker://{container.id}",
            }
        }
        self._set_status(
            pod,
            phase="Succeeded" if code == 0 else "Failed",
            containerStatuses=[self._container_status(pod, state, image_id)],
            conditions=_conditions(ready=False),
        )

    def _deleting(self, pod: Obj) -> bool:
        meta = pod["metadata"]
        try:
            return (
                "deletionTimestamp"
                in self.store.get("Pod", meta["namespace"], meta["name"])["metadata"]
            )
        except ApiError:
            return True

    def _image(self, pod: Obj) -> Any:
        import docker.errors

        name = pod["spec"]["containers"][0]["image"]
        policy = pod["spec"]["containers"][0].get("imagePullPolicy", "IfNotPresent")
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            if policy != "Always":
                return self.docker.images.get(name)
        if policy == "Never":
            return self._waiting(pod, "ErrImageNeverPull", f'image "{name}" is not present')
        try:
            return self.docker.images.pull(name)
        except docker.errors.APIError as exc:
            return self._waiting(pod, "ImagePullBackOff", f'Back-off pulling image "{name}": {exc}')

    def _waiting(self, pod: Obj, reason: str, message: str) -> None:
        waiting = {"waiting": {"reason": reason, "message": message}}
        self._set_status(pod, containerStatuses=[self._container_status(pod, waiting)])

    def stop(self, uid: str, grace: float) -> None:
        """Stop and remove the pod's container (SIGTERM, SIGKILL after ``grace``)."""
        with self._lock:
            self._started.add(uid)  # a pod deleted before it started never starts
            container_id = self.containers.pop(uid, None)
        if container_id is None:
            return
        with contextlib.suppress(Exception):
            self.docker.api.stop(container_id, timeout=max(0, round(grace)))
        with contextlib.suppress(Exception):
            self.docker.api.remove_container(container_id, force=True)

    def kill_for_eviction(self, uid: str) -> None:
        with self._lock:
            container_id = self.containers.get(uid)
        if container_id is not None:
            with contextlib.suppress(Exception):
                self.docker.api.kill(container_id)

    def logs(self, pod: Obj, follow: bool, tail: int | None) -> Iterator[bytes]:
        """The container's output (stdout and stderr, as the kubelet merges them)."""
        with self._lock:
            container_id = self.containers.get(pod["metadata"]["uid"])
        if container_id is None:
            name, container = pod["metadata"]["name"], pod["spec"]["containers"][0]["name"]
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        options: dict[str, Any] = {"stream": True, "follow": follow}
        if tail is not None:
            options["tail"] = tail
        try:
            yield from self.docker.api.logs(container_id, **options)
        except Exception:  # the container was removed while streaming
            return

    def remove_all(self) -> None:
        with self._lock:
            self._closed = True
            uids, threads = list(self.containers), list(self._threads)
        for uid in uids:
            self.stop(uid, 0)
        for thread in threads:  # a create in flight removes its own container (see _run)
            thread.join(timeout=30)


def _conditions(ready: bool) -> list[Obj]:
    stamp = now()
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
        {"type": "Ready", "status": str(ready), "lastTransitionTime": stamp},
        {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": stamp},
    ]
