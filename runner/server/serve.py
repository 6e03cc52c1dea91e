"""Starting the server: settings from the command line, the binding rule, uvicorn."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

from runner.errors import UsageError
from runner.server.app import LOOPBACK_HOSTS, Settings

TOKEN_VARIABLE = "RUNNER_SERVER_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_settings(
    *,
    host: str,
    token: str | None,
    token_file: Path | None,
    artifact_root: str | None,
    allowed_hosts: tuple[str, ...],
) -> Settings:
    """The settings of a server bound to ``host``; off loopback a token is required."""
    if token and token_file:
        raise UsageError("give --token or --token-file, not both")
    if token_file is not None:
        token = _read_token(token_file)
    token = token or os.environ.get(TOKEN_VARIABLE) or None
    if not is_loopback(host) and not token:
        raise UsageError(
            f"binding to {host} lets other machines reach the server: it needs a token",
            hint=f"pass --token-file FILE (or --token, or set {TOKEN_VARIABLE}); "
            "or bind to 127.0.0.1",
        )
    return Settings(
        store_uri=None,
        artifact_root=artifact_root,
        token=token,
        allowed_hosts=_allowed_hosts(host, token, allowed_hosts),
    )


def _read_token(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


def _allowed_hosts(host: str, token: str | None, given: tuple[str, ...]) -> tuple[str, ...]:
    """Host names accepted in Host/Origin headers.

    Loopback names always; the bound address; and any name when off loopback with a token and
    no list given (the token then stops a rebound page, which cannot know it).
    """
    if given:
        return (*LOOPBACK_HOSTS, *given)
    if not is_loopback(host) and token and host in ("0.0.0.0", "::"):
        return ("*",)
    return (*LOOPBACK_HOSTS, host.strip("[]"))


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the server until interrupted."""
    import uvicorn

    from runner.server.app import create_app

    app = create_app(settings)
    shown = f"[{host}]" if ":" in host else host
    print(f"runner server: listening on http://{shown}:{port}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
