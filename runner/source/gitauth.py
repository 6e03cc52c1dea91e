"""Credentials of an http(s) git URL reach git through the environment, never a process's argv."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from runner.errors import SourceError
from runner.redact import strip_credentials
from runner.source.gitproc import Config

USER_VAR = "RUNNER_GIT_USERNAME"
PASSWORD_VAR = "RUNNER_GIT_PASSWORD"
# git runs a helper with `get`, `store` or `erase`; this one only answers `get`, from variables
# that exist in the environment of this one git call (argv is world-readable, environ is not);
# printf is a shell builtin, so the values are in no process's argv either.
_HELPER = (
    f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${USER_VAR}" '
    f'"${PASSWORD_VAR}"; }}; f'
)


@dataclass(frozen=True)
class Remote:
    """A remote as git is given it: a URL fit for argv, plus what carries its credentials."""

    url: str
    config: Config = ()
    env: Mapping[str, str] = field(default_factory=dict)


def remote(url: str) -> Remote:
    """Move `user:token@` of an http(s) URL into a credential helper scoped to its origin.

    The user's own helpers are switched off for the call, so the URL's credentials win as they
    did in the URL, and a redirect or a submodule on another origin is never sent them.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return Remote(strip_credentials(url))  # ssh keeps its user name; nothing else has secrets
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if any(char in user + password for char in "\r\n\0"):
        raise SourceError(
            f"refusing git URL {strip_credentials(url)!r}: its credentials contain a line break"
        )
    origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}"
    config = (("credential.helper", ""), (f"credential.{origin}.helper", _HELPER))
    return Remote(strip_credentials(url), config, {USER_VAR: user, PASSWORD_VAR: password})
