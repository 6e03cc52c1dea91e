"""Validated MLproject documents cached by content: a repeat run skips YAML and jsonschema.

Key: sha256 of (cache version, runner version, schema bytes, file bytes): an upgrade never
trusts a document validated by older code. Value: the parsed document with its
marks and the author's scalar texts, as JSON. Only documents that passed schema validation are
stored, so a hit means "valid"; semantic checks (env files exist, defaults fit) still run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from runner import __version__
from runner.atomic import write_atomically
from runner.errors import RunnerError
from runner.project.yamldoc import Mark, YamlDoc

CACHE_VERSION = b"mlproject-doc-v1"


def digest(schema: bytes, data: bytes) -> str:
    versions = CACHE_VERSION + b"\0" + __version__.encode()
    return hashlib.sha256(versions + b"\0" + schema + b"\0" + data).hexdigest()


def _entry(key: str) -> Path | None:
    try:
        from runner.home import runner_home

        return runner_home() / "cache" / "spec" / f"{key}.json"
    except (OSError, RunnerError):  # an unusable home is said where it matters, not here
        return None


def lookup(key: str, name: str) -> YamlDoc | None:
    """The cached document for ``key``, or None (missing or unreadable: parse again)."""
    entry = _entry(key)
    if entry is None:
        return None
    try:
        raw = json.loads(entry.read_text())
        marks = {tuple(path): Mark(line, col) for path, line, col in raw["marks"]}
        texts = {tuple(path): text for path, text in raw["texts"]}
        return YamlDoc(name, raw["data"], marks, texts)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(key: str, doc: YamlDoc) -> None:
    """Store a validated document; an optimisation, so any failure is ignored."""
    entry = _entry(key)
    if entry is None or not _round_trips(doc.data):
        return
    payload = {
        "data": doc.data,
        "marks": [[list(p), m.line, m.column] for p, m in doc.marks.items()],
        "texts": [[list(p), t] for p, t in doc.texts.items()],
    }
    with contextlib.suppress(OSError, TypeError, ValueError):
        write_atomically(entry, json.dumps(payload))


def _round_trips(data: Any) -> bool:
    """JSON turns non-string keys into strings: such documents are not cached."""
    try:
        return bool(json.loads(json.dumps(data)) == data)
    except (TypeError, ValueError):
        return False
