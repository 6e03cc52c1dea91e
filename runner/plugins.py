"""Entry-point discovery, cached until the installed packages change.

Scanning every installed distribution's metadata costs ~45 ms per `runner` start-up; the answer
only changes when something is installed or removed, which changes the mtime of the directory
on sys.path that holds it. So the scan result is cached under that key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

from runner.atomic import write_atomically
from runner.home import runner_home

CACHE_VERSION = 2
# scanned together: the run path asks for both, and one cache file is one read
KNOWN_GROUPS = ("runner.backends", "runner.env_managers")


def _installed_state() -> list[list[Any]]:
    state: list[list[Any]] = []
    cwd = os.getcwd()
    # the working directory changes all the time and never holds installed packages here
    for entry in (e for e in sys.path if e not in ("", ".", cwd)):
        try:
            state.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            state.append([entry, None])
    return state


def _scan(groups: Iterable[str]) -> dict[str, dict[str, str]]:
    from importlib.metadata import entry_points

    found: dict[str, dict[str, str]] = {}
    for group in groups:
        eps = found.setdefault(group, {})
        for ep in entry_points(group=group):
            eps.setdefault(ep.name, ep.value)  # first on sys.path wins, as imports do
    return found


_memo: tuple[list[Any], dict[str, dict[str, str]]] | None = None


def entry_points_of(group: str) -> dict[str, str]:
    """Map name → "module:attribute" for ``group``, from the cache when it is current."""
    global _memo
    key = [CACHE_VERSION, sys.executable, _installed_state()]
    if _memo is None or _memo[0] != key or group not in _memo[1]:
        _memo = (key, _cached(key, group))
    return dict(_memo[1][group])  # a second lookup in the same process reads no file


def _cached(key: list[Any], group: str) -> dict[str, dict[str, str]]:
    # one file per interpreter and path list, so `python -m runner` and the script don't thrash
    paths = hashlib.sha256(json.dumps([sys.executable, [p for p, _ in key[2]]]).encode())
    cache = runner_home() / "cache" / f"entry-points-{paths.hexdigest()[:16]}.json"
    try:
        data = json.loads(cache.read_text())
        if data["key"] == key:
            found = {name: dict(eps) for name, eps in data["groups"].items()}
            if group in found:
                return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    found = _scan({*KNOWN_GROUPS, group})
    with contextlib.suppress(OSError):  # a read-only home only costs the scan next time
        write_atomically(cache, json.dumps({"key": key, "groups": found}))
    return found


def load_object(value: str) -> Any:
    """Import "module:attr.sub" the way importlib.metadata.EntryPoint.load does."""
    module_name, _, attrs = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj
