"""The browser's token: typed once into /ui/login, then carried by a cookie the UI's reads accept.

The cookie holds an HMAC of the server token, never the token itself, and is accepted only for
GET and HEAD under /ui/: a page that could make the browser send it can read nothing and write
nothing through the REST API, which still wants ``Authorization: Bearer``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

COOKIE = "runner_ui_session"
UI_PREFIX = "/ui/"
LOGIN_PATH = "/ui/login"
# the login form and its stylesheet need no token
_STATIC_FILE = re.compile(r"/ui/static/[a-z0-9_-]+\.(?:css|js|svg)")


def session_value(token: bytes) -> str:
    """What the cookie carries for ``token``: changes when the token does."""
    return hmac.new(token, b"runner web ui session", hashlib.sha256).hexdigest()


def cookie_ok(method: str, path: str, cookie_header: str, token: bytes) -> bool:
    """Whether a UI read carries the session cookie of ``token``."""
    if method not in ("GET", "HEAD") or not path.startswith(UI_PREFIX):
        return False
    expected = session_value(token).encode()
    return any(hmac.compare_digest(value.encode(), expected) for value in _cookies(cookie_header))


def is_open(path: str) -> bool:
    """The login form and the plain file names of the static folder (no ``..``, no folders)."""
    return path == LOGIN_PATH or _STATIC_FILE.fullmatch(path) is not None


def is_ui(path: str) -> bool:
    return path == "/ui" or path.startswith(UI_PREFIX)


def _cookies(header: str) -> list[str]:
    found = []
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            found.append(value)
    return found
