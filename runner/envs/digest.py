"""Content digests: sha256 of canonical JSON, and the environment cache key built from it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Part of every key: bump it when what an env directory holds changes, so old envs are not reused.
CACHE_FORMAT_VERSION = 2


def canonical_digest(value: Any) -> str:
    """sha256 of canonical JSON: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def platform_tag() -> str:
    import sysconfig  # ~0.5 ms: only runs that build or key an env pay for it

    return sysconfig.get_platform()


def env_key(manager: str, lock_text: str, interpreter: str, platform: str) -> str:
    """sha256 of canonical JSON of everything that decides an env's contents."""
    return canonical_digest(
        {
            "manager": manager,
            "lock": lock_text,
            "python": interpreter,
            "platform": platform,
            "format": CACHE_FORMAT_VERSION,
        }
    )
