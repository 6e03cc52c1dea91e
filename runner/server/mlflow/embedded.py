"""The MLflow API served for one run's duration, from the runner's own process.

It listens on an ephemeral port of each address the run's backend can reach (loopback for
local runs; the bridge's gateway too for containers) and accepts only requests that carry the
run's own random token (``MLFLOW_TRACKING_TOKEN``). The sockets listen before ``start``
returns, so the entry point can start at once: the server (its imports, the app) comes up in
a thread meanwhile, and a client that connects earlier waits in the listen queue.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Sequence
from typing import Any

from runner.errors import RunnerError

BIND_TRIES = 20
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")  # as runner.server.app accepts by default
# names a container uses for the host (the docker backend's host-gateway alias)
CONTAINER_HOST_NAMES = ("host.docker.internal",)


class EmbeddedApi:
    """A uvicorn server in a daemon thread over the run's store; ``close`` stops it."""

    def __init__(self, store_uri: str | None, addresses: Sequence[str]) -> None:
        self.token = secrets.token_urlsafe(32)
        self._sockets = _bind_same_port(addresses)
        self.port = int(self._sockets[0].getsockname()[1])
        self._store_uri = store_uri
        self._hosts = (*LOOPBACK_NAMES, *addresses, *CONTAINER_HOST_NAMES)
        self._lock = threading.Lock()
        self._server: Any = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # why the server stopped serving, if it failed

    @property
    def url(self) -> str:
        """The URL a local entry point uses (container backends rewrite loopback URLs)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedApi:
        self._thread = threading.Thread(target=self._serve, name="runner-mlflow-api", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            server = _server(self._store_uri, self.token, self._hosts)
            with self._lock:
                if self._closed:
                    return
                self._server = server
            server.run(sockets=self._sockets)
        except BaseException as exc:  # reported by the caller once the run has ended
            self.error = exc
        finally:
            for sock in self._sockets:  # a client still waiting is refused, not left hanging
                sock.close()

    @property
    def started(self) -> bool:
        return bool(self._server is not None and self._server.started)

    def close(self, *, wait: float | None = None) -> None:
        """Stop serving; the entry point has ended, so the run need not wait for the server's
        shutdown (up to a tenth of a second) unless ``wait`` seconds are asked for."""
        with self._lock:
            self._closed = True
            if self._server is not None:
                self._server.should_exit = True
        if wait and self._thread is not None:
            self._thread.join(wait)


def _server(store_uri: str | None, token: str, hosts: tuple[str, ...]) -> Any:
    """The server, made in the serving thread: its imports stay off the run's critical path."""
    import uvicorn

    from runner.server.app import Settings, create_app

    settings = Settings(store_uri=store_uri, token=token, allowed_hosts=hosts)
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        # named, not "auto": the probing imports cost start-up time and nothing here needs them
        http="h11",
        ws="none",
        loop="asyncio",
        lifespan="on",
    )
    return uvicorn.Server(config)


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
    where = ", ".join(addresses)
    raise RunnerError(f"cannot open a port for the run's MLflow API on {where}: {last}")


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
