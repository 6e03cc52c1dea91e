"""Conda channels: names, URLs and local paths to URLs; credentials kept out of what is recorded."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# An anaconda-style token path segment: https://host/t/<token>/channel
_TOKEN = re.compile(r"/t/[^/]+(?=/|$)")
_PATH_LIKE = re.compile(r"^(\.{1,2}/|/|~)")


def channel_url(channel: str, root: Path) -> str:
    """A channel as the solver takes it: names stay names (resolved with the channel alias),
    local paths become ``file://`` URLs, relative ones against the project (not the cwd)."""
    if "://" in channel:
        return channel.rstrip("/")
    if _PATH_LIKE.match(channel):
        path = Path(os.path.expanduser(channel))
        return (path if path.is_absolute() else root / path).resolve().as_uri()
    return channel


def channel_urls(channels: Iterable[str], root: Path) -> list[str]:
    return [channel_url(channel, root) for channel in channels]


def redact(url: str) -> str:
    """``url`` without user, password or ``/t/<token>`` segment: what may be recorded."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, _TOKEN.sub("", parts.path), parts.query, ""))


_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_TOKEN_IN_TEXT = re.compile(r"(?<=[^\s/])/t/[^/\s]+(?=/)")


def redact_text(text: str) -> str:
    """A message (a solver's, an installer's) with any URL credentials taken out."""
    return _TOKEN_IN_TEXT.sub("", _USERINFO_IN_TEXT.sub(r"\g<scheme>", text))


def secrets_of(urls: Iterable[str]) -> dict[str, str]:
    """Redacted base URL -> the URL with its credentials, for channels that carry any."""
    return {redact(url): url.rstrip("/") for url in urls if redact(url) != url.rstrip("/")}


def with_credentials(url: str, secrets: Mapping[str, str]) -> str:
    """The download URL for a recorded (redacted) package URL: its channel's credentials back."""
    for public, private in secrets.items():
        if url.startswith(public.rstrip("/") + "/"):
            return private + url[len(public.rstrip("/")) :]
    return url
