"""The emulator's HTTP API server: core/v1 Pods (+ log), batch/v1 Jobs and CronJobs."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.k8s_emulator.objects import (
    cronjob_defaults,
    job_defaults,
    pod_for_create,
    schema_check,
    strip_server_fields,
)
from tests.k8s_emulator.store import ApiError, Obj

if TYPE_CHECKING:
    from tests.k8s_emulator import Emulator

ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set '
    "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress "
    'this warning"'
)
_ROUTES = [
    (
        re.compile(
            r"^/api/v1/(?:namespaces/(?P<ns>[^/]+)/)?(?P<res>pods)"
            r"(?:/(?P<name>[^/]+)(?:/(?P<sub>log|status))?)?$"
        ),
        "v1",
    ),
    (
        re.compile(
            r"^/apis/batch/v1/(?:namespaces/(?P<ns>[^/]+)/)?(?P<res>jobs|cronjobs)"
            r"(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$"
        ),
        "batch/v1",
    ),
]
KINDS = {"pods": "Pod", "jobs": "Job", "cronjobs": "CronJob"}


@dataclass(frozen=True)
class Request:
    """One request as the server received it, for tests that assert what a client sent."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read requests
        pass

    def _route(self) -> tuple[dict[str, str | None], str, dict[str, str]]:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._request = Request(self.command, parts.path, query, {})
        self.server.emulator.requests.append(self._request)
        for pattern, api_version in _ROUTES:
            if match := pattern.match(parts.path):
                return match.groupdict(), api_version, query
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _body(self) -> Obj:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length))
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        self._request.body.update(data)
        return data

    def _send(self, code: int, body: Obj, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, content_type: str, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # a dropped connection: no terminating chunk, the client sees it cut
        self.close_connection = True

    def _dispatch(self) -> None:
        try:
            if urlsplit(self.path).path == "/version":
                self._send(200, self.server.emulator.version())
                return
            route, api_version, query = self._route()
            getattr(self, f"_{self.command.lower()}")(route, api_version, query)
        except ApiError as exc:
            self._send(exc.code, exc.status())

    do_GET = do_POST = do_DELETE = _dispatch

    def _get(self, route: dict[str, str | None], api_version: str, query: dict[str, str]) -> None:
        emulator, kind, ns, name = (
            self.server.emulator,
            KINDS[route["res"] or ""],
            route["ns"],
            route["name"],
        )
        if name is None and query.get("watch") in ("true", "1"):
            self._stream("application/json", emulator.watch_lines(kind, ns, query))
        elif name is None:
            items, rv = emulator.store.list(
                kind, ns, query.get("labelSelector"), query.get("fieldSelector")
            )
            body = {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            }
            self._send(200, body)
        elif route["sub"] == "log":
            self._log(emulator.store.get(kind, ns or "", name), query)
        else:
            self._send(200, emulator.store.get(kind, ns or "", name))

    def _log(self, pod: Obj, query: dict[str, str]) -> None:
        tail = int(query["tailLines"]) if "tailLines" in query else None
        follow = query.get("follow") in ("true", "1")
        chunks = self.server.emulator.kubelet.logs(pod, follow, tail)
        if follow:
            first = next(chunks, b"")  # a 400 (not started) is raised before the 200 is sent
            self._stream("text/plain", _prepend(first, chunks))
            return
        data = b"".join(chunks)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _post(self, route: dict[str, str | None], api_version: str, query: dict[str, str]) -> None:
        kind, ns = KINDS[route["res"] or ""], route["ns"] or "default"
        if route["name"] is not None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        body = strip_server_fields(self._body())
        if body.get("kind", kind) != kind:
            raise ApiError(400, "BadRequest", f"the body's kind {body.get('kind')!r} is not {kind}")
        body.setdefault("apiVersion", api_version)
        body.setdefault("kind", kind)
        body["metadata"].setdefault("namespace", ns)
        schema_check(body, f'{kind} "{body["metadata"].get("name", "")}"')
        prepared = {"Job": job_defaults, "CronJob": cronjob_defaults, "Pod": pod_for_create}[kind](
            body
        )
        if query.get("dryRun") == "All":
            self._send(201, prepared)
            return
        self._send(201, self.server.emulator.store.create(kind, ns, prepared))

    def _delete(
        self, route: dict[str, str | None], api_version: str, query: dict[str, str]
    ) -> None:
        kind, ns, name = KINDS[route["res"] or ""], route["ns"] or "default", route["name"]
        if name is None:
            raise ApiError(405, "MethodNotAllowed", "collection delete is not emulated")
        body = self._body()
        policy = body.get("propagationPolicy") or query.get("propagationPolicy")
        emulator = self.server.emulator
        obj = emulator.store.get(kind, ns, name)
        if kind == "Pod":
            grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds", 30))
            emulator.controllers.delete_pod(obj, grace=float(grace))
            self._send(
                200,
                emulator.store.get(kind, ns, name) if _exists(emulator, kind, ns, name) else obj,
            )
            return
        headers = {}
        if policy == "Foreground":
            obj = emulator.store.update(kind, ns, name, _foreground)
            self._send(200, obj)
            return
        if policy in (None, "Orphan") and kind == "Job":
            emulator.controllers.orphan(obj)
            if policy is None:  # the batch/v1 default: the server warns, pods keep running
                headers["Warning"] = ORPHAN_WARNING
        emulator.store.delete(kind, ns, name)
        details = {
            "name": name,
            "group": "batch",
            "kind": route["res"],
            "uid": obj["metadata"]["uid"],
        }
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
        self._send(200, status, headers)


def _foreground(obj: Obj) -> None:
    from tests.k8s_emulator.store import now

    obj["metadata"].setdefault("deletionTimestamp", now())
    obj["metadata"]["finalizers"] = ["foregroundDeletion"]


def _exists(emulator: Emulator, kind: str, ns: str, name: str) -> bool:
    try:
        emulator.store.get(kind, ns, name)
    except ApiError:
        return False
    return True


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.emulator = emulator
        self.thread = threading.Thread(target=self.serve_forever, name="k8s-api", daemon=True)


def watch_lines(
    emulator: Emulator, kind: str, ns: str | None, query: dict[str, str]
) -> Iterator[bytes]:
    """A watch stream: one JSON event per line, until the timeout or a dropped connection."""
    asked = float(query.get("timeoutSeconds") or emulator.watch_expiry)
    until = time.monotonic() + min(asked, emulator.watch_expiry)
    closed = threading.Event()
    emulator.open_watches.append(closed)
    try:
        for type_, obj in emulator.store.watch(
            kind,
            ns,
            query.get("resourceVersion"),
            query.get("labelSelector"),
            query.get("fieldSelector"),
            until,
            closed,
        ):
            yield json.dumps({"type": type_, "object": obj}).encode() + b"\n"
        if closed.is_set():
            raise ConnectionAbortedError("watch dropped by the test")
    finally:
        with contextlib.suppress(ValueError):
            emulator.open_watches.remove(closed)
