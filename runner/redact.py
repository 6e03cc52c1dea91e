"""Credentials out of URLs: stripped for what is recorded, masked for what is shown."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"//[^/@]*@")
_SSH_SCHEMES = ("ssh", "git+ssh")


def strip_credentials(url: str) -> str:
    """Drop passwords and tokens; keep an ssh user name, which names the account, not a secret."""
    if not _SCHEME.match(url):
        return url
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return url
    user = parts.username if parts.scheme.lower() in _SSH_SCHEMES else None
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc))


def redact_uri(uri: str) -> str:
    """The URI with any ``user:password@`` replaced by ``***@``, fit for messages and logs."""
    return _USERINFO.sub("//***@", uri)
