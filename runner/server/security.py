"""What every request passes before a route sees it: token, Host and Origin, size limits."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner.ui import session

if TYPE_CHECKING:
    from runner.server.app import Settings


class RequestTooLarge(Exception):
    """A request body went over its limit while it was being read."""


class SecurityMiddleware:
    """Refuses a request unless its token, Host and Origin pass, and caps the body it sends.

    Host and Origin are checked against the allowed names so that a web page whose domain is
    re-bound to 127.0.0.1 (DNS rebinding) cannot talk to a loopback server from a browser.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.token = settings.token.encode() if settings.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(headers, scope)
        if refusal is not None:
            if refusal[0] == 401 and session.is_ui(scope["path"]):
                await _to_login(send)  # a browser is sent to the form that takes the token
                return
            await _refuse(send, *refusal)
            return
        limit = self._limit(scope)
        declared = headers.get("content-length", "0")
        if not declared.isdigit():
            await _refuse(send, 400, "bad-request", "the Content-Length header is not a number")
            return
        if int(declared) > limit:
            await _refuse(send, 413, "request-too-large", _too_large(limit))
            return
        await self._capped(scope, receive, send, limit)

    def _refusal(self, headers: dict[str, str], scope: Scope) -> tuple[int, str, str] | None:
        if not self._host_allowed(headers.get("host", "")):
            return 403, "host-not-allowed", "the Host header names a host this server refuses"
        origin = headers.get("origin")
        if origin is not None and not self._host_allowed(_origin_host(origin)):
            return 403, "origin-not-allowed", "requests from this Origin are refused"
        if self.token is not None and not (
            self._token_ok(headers.get("authorization", "")) or self._ui_ok(scope, headers)
        ):
            return 401, "unauthorized", "a valid token is required (Authorization: Bearer ...)"
        return None

    def _token_ok(self, authorization: str) -> bool:
        scheme, _, given = authorization.partition(" ")
        assert self.token is not None
        # compare_digest: the time taken does not tell how much of the token was right
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token
        )

    def _ui_ok(self, scope: Scope, headers: dict[str, str]) -> bool:
        """The web UI's login form, or a UI read with the session cookie (runner.ui.session)."""
        assert self.token is not None
        path = scope["path"]
        cookie = headers.get("cookie", "")
        return session.is_open(path) or session.cookie_ok(scope["method"], path, cookie, self.token)

    def _host_allowed(self, host_header: str) -> bool:
        allowed = self.settings.allowed_hosts
        if "*" in allowed:
            return True
        return _hostname(host_header) in {name.lower() for name in allowed}

    def _limit(self, scope: Scope) -> int:
        # artifact uploads carry files; every other request carries a JSON document
        if scope["method"] == "PUT" and "/artifacts/" in scope["path"]:
            return self.settings.max_artifact_bytes
        return self.settings.max_body_bytes

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, tracking_send)
        except RequestTooLarge:
            if not started:
                await _refuse(send, 413, "request-too-large", _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is larger than this server accepts ({limit} bytes)"


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _hostname(host_header: str) -> str:
    """The name in a Host header without its port: ``[::1]:5005`` → ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _origin_host(origin: str) -> str:
    try:
        parts = urlsplit(origin)
        return parts.hostname or "" if parts.scheme in ("http", "https") else ""
    except ValueError:
        return ""


# MLflow's names for these refusals: its client shows them ("UNAUTHENTICATED: ...") and
# raises the matching exception, instead of calling them internal errors
_MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    413: "RESOURCE_EXHAUSTED",
}


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body: dict[str, Any] = {"error": code, "message": message}
    if status in _MLFLOW_CODES:
        body["error_code"] = _MLFLOW_CODES[status]
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="runner"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _to_login(send: Send) -> None:
    headers = [(b"location", session.LOGIN_PATH.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
