"""The MLflow API served for one run's duration, from the runner's own process.

It listens on an ephemeral port of each address the run's backend can reach (loopback for
local runs; the bridge's gateway too for containers), accepts only requests that carry the
run's own random token (``MLFLOW_TRACKING_TOKEN``), and stops when the entry point has ended.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from runner.errors import RunnerError

START_TIMEOUT = 15.0
STOP_GRACE = 5  # seconds in-flight requests get when the run ends
BIND_TRIES = 20
# names a container uses for the host (the docker backend's host-gateway alias)
CONTAINER_HOST_NAMES = ("host.docker.internal",)


class EmbeddedApi:
    """A uvicorn server in a daemon thread over the run's store; ``close`` stops it."""

    def __init__(self, store_uri: str | None, addresses: Sequence[str]) -> None:
        from runner.server.app import LOOPBACK_HOSTS, Settings

        self.token = secrets.token_urlsafe(32)
        self._sockets = _bind_same_port(addresses)
        self.port = int(self._sockets[0].getsockname()[1])
        hosts = (*LOOPBACK_HOSTS, *addresses, *CONTAINER_HOST_NAMES)
        self._settings = Settings(store_uri=store_uri, token=self.token, allowed_hosts=hosts)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL a local entry point uses (container backends rewrite loopback URLs)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedApi:
        import uvicorn

        from runner.server.app import create_app

        config = uvicorn.Config(
            create_app(self._settings),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=STOP_GRACE,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": self._sockets},
            name="runner-mlflow-api",
            daemon=True,
        )
        self._thread.start()
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if self._thread is None or not self._thread.is_alive():
                raise RunnerError("the MLflow API for the run could not start")
            if time.monotonic() > deadline:
                self.close()
                raise RunnerError(f"the MLflow API for the run did not start in {START_TIMEOUT}s")
            time.sleep(0.005)

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_GRACE + 5)
        for sock in self._sockets:
            sock.close()


def _bind_same_port(addresses: Sequence[str]) -> list[socket.socket]:
    """One listening socket per address, all on the same ephemeral port (so a loopback URL
    rewritten to the host's gateway address keeps its port)."""
    last: OSError | None = None
    for _ in range(BIND_TRIES):
        bound: list[socket.socket] = []
        try:
            port = 0
            for address in dict.fromkeys(addresses):
                sock = _listener(address, port)
                bound.append(sock)
                port = int(sock.getsockname()[1])
            return bound
        except OSError as exc:  # the port is taken on a later address: try another one
            last = exc
            for sock in bound:
                sock.close()
    raise RunnerError(
        f"cannot open a port for the run's MLflow API on {', '.join(addresses)}: {last}"
    )


def _listener(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.set_inheritable(False)  # the entry point must not inherit the listening socket
    except OSError:
        sock.close()
        raise
    return sock
