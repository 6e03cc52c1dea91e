"""Project URI and version validation: refuse option-looking, expanding or unsafe git input."""

from __future__ import annotations

import re

from runner.errors import SourceError
from runner.redact import strip_credentials

ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file")
FULL_SHA = re.compile(r"[0-9a-f]{40}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]/]+\]|[^@/:]+):(?P<path>.*)$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s']+@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_HINT = "Use https://host/org/repo.git, ssh://git@host/org/repo.git, git@host:org/repo.git."


def validate_version(version: str) -> None:
    if not _VERSION.fullmatch(version) or ".." in version:
        raise SourceError(
            f"invalid version {version!r}",
            hint="A version is a branch, tag or commit: letters, digits, '.', '_', '/' and '-', "
            "not starting with '-' and without '..'.",
        )


def check_uri_basics(uri: str) -> None:
    """Refusals that hold for every kind of project URI, local paths included."""
    shown = strip_credentials(uri)
    if _CONTROL.search(uri):
        raise SourceError(f"refusing project URI {shown!r}: it contains control characters")
    if uri.startswith("-"):
        raise SourceError(
            f"refusing project URI {shown!r}: it starts with '-' and would be an option"
        )
    if match := _TRANSPORT.match(uri):
        transport = match.group(0)
        raise SourceError(
            f"refusing project URI {shown!r}: the '{transport}' transport syntax is not allowed",
            hint=_URL_HINT,
        )


def check_git_url(url: str) -> None:
    """Refuse a git URL that could inject options, expand variables or pick an unsafe transport."""
    check_uri_basics(url)
    shown = strip_credentials(url)
    if re.search(r"\s", url):
        raise SourceError(f"refusing git URL {shown!r}: it contains whitespace")
    if "$" in url:
        raise SourceError(f"refusing git URL {shown!r}: '$' is not allowed (no variable expansion)")
    if _BAD_PERCENT.search(url):
        raise SourceError(f"refusing git URL {shown!r}: '%' must start an escape like %2F")
    user, host = _user_host(url, shown)
    if host.startswith("-") or (user or "").startswith("-"):
        raise SourceError(f"refusing git URL {shown!r}: host and user must not start with '-'")


def _user_host(url: str, shown: str) -> tuple[str | None, str]:
    if match := _SCHEME.match(url):
        scheme = match.group(1).lower()
        if scheme not in ALLOWED_SCHEMES:
            raise SourceError(f"refusing git URL {shown!r}: scheme '{scheme}' is not allowed",
                              hint=_URL_HINT)  # fmt: skip
        netloc = url[match.end() :].split("/", 1)[0]
        user, _, host = netloc.rpartition("@")
        return user or None, host
    if scp := _SCP.match(url):
        return scp.group("user"), scp.group("host")
    raise SourceError(f"refusing git URL {shown!r}: not a recognised git URL", hint=_URL_HINT)


def is_scp_like(url: str) -> bool:
    return "://" not in url and bool(_SCP.match(url)) and not url.startswith(("/", "."))
