"""A Kubernetes API emulator for the tests: the real ``kubernetes`` client talks to it over HTTP.

``Emulator`` starts an API server on 127.0.0.1 (Pods with logs, Jobs, CronJobs; selectors,
resourceVersion, watches that expire), a control loop (scheduler, Job controller, garbage
collector, TTL; CronJobs fire when a test calls ``fire``) and a "kubelet" that runs each pod's
container on the local Docker Engine. ``write_kubeconfig`` gives the file a user would have.
What it cannot prove is listed in the README ("Kubernetes backend").
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.k8s_emulator.controllers import Controllers
from tests.k8s_emulator.kubelet import NODE, Kubelet
from tests.k8s_emulator.server import ApiServer, Request, watch_lines
from tests.k8s_emulator.store import Obj, Store

__all__ = ["Emulator"]


class Emulator:
    """One emulated single-node cluster; ``close`` removes every container it started."""

    def __init__(self, docker: Any, watch_expiry: float = 300.0) -> None:
        self.store = Store()
        self.kubelet = Kubelet(self.store, docker)
        labels = {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}
        self.controllers = Controllers(self.store, self.kubelet, labels)
        self.watch_expiry = watch_expiry  # the longest a watch stays open (the server's cap)
        self.open_watches: list[threading.Event] = []
        self.requests: list[Request] = []  # what clients sent, in order
        self.server = ApiServer(self)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        self.server.thread.start()
        self.controllers.start()
        return self

    def close(self) -> None:
        for closed in list(self.open_watches):
            closed.set()
        self.controllers.stop()
        self.server.shutdown()
        self.server.server_close()
        self.kubelet.remove_all()

    def version(self) -> Obj:
        return {
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-emulated",
            "platform": "linux/amd64",
        }

    def watch_lines(self, kind: str, ns: str | None, query: dict[str, str]) -> Any:
        return watch_lines(self, kind, ns, query)

    def write_kubeconfig(
        self, path: Path, namespace: str = "default", context: str = "emulator"
    ) -> Path:
        """A kubeconfig with one context pointing at this server (a token it does not check)."""
        import yaml

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "emulator", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # test hooks: what a cluster does that no API call of the backend asks for

    def drop_watches(self) -> None:
        """Cut every open watch connection mid-stream."""
        for closed in list(self.open_watches):
            closed.set()

    def compact(self) -> None:
        """Forget the event history: a watch resumed from an old resourceVersion gets 410."""
        self.store.compact()

    def evict(self, namespace: str, pod: str) -> None:
        self.controllers.evict(namespace, pod)

    def fire(self, namespace: str, cronjob: str) -> Obj:
        return self.controllers.fire(namespace, cronjob)

    def set_capacity(self, **resources: str) -> None:
        self.controllers.capacity.update(resources)

    def pods(self, namespace: str = "default", selector: str | None = None) -> list[Obj]:
        return self.store.list("Pod", namespace, selector)[0]
