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
from typing import Any

from runner.atomic import write_atomically
from runner.home import runner_home

CACHE_VERSION = 1


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


def _scan(group: str) -> dict[str, str]:
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep.value)  # first on sys.path wins, as imports do
    return found


def entry_points_of(group: str) -> dict[str, str]:
    """Map name → "module:attribute" for ``group``, from the cache when it is current."""
    state = _installed_state()
    key = [CACHE_VERSION, sys.executable, state]
    # one file per interpreter and path list, so `python -m runner` and the script don't thrash
    paths = hashlib.sha256(json.dumps([sys.executable, [p for p, _ in state]]).encode())
    cache = runner_home() / "cache" / f"entry-points-{group}-{paths.hexdigest()[:16]}.json"
    try:
        data = json.loads(cache.read_text())
        if data["key"] == key:
            return dict(data["entry_points"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = _scan(group)
    with contextlib.suppress(OSError):  # a read-only home only costs the scan next time
        write_atomically(cache, json.dumps({"key": key, "entry_points": found}))
    return found


def load_object(value: str) -> Any:
    """Import "module:attr.sub" the way importlib.metadata.EntryPoint.load does."""
    module_name, _, attrs = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj
