"""What a run page shows of where a run came from and what it ran in, read from its record
and the files the runner keeps beside its artifacts (the log, the dirty diff)."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any, NamedTuple

from runner.store import RunRecord

LOG_FILE = "output.log"  # runner.execution.orchestrator.LOG_FILE, not imported: that pulls a run
DIFF_FILE = "git-diff.patch"
LOG_TAIL = 256 * 1024  # bytes of a log shown when a page opens; the rest is one click away
LOG_CHUNK = 256 * 1024  # bytes one follow request returns at most
DIFF_CAP = 1024 * 1024


class Fact(NamedTuple):
    """One line of the provenance list: a label and its text (``pre`` for long text)."""

    label: str
    value: str
    pre: bool = False


class LogChunk(NamedTuple):
    text: str
    offset: int  # where the next read starts
    start: int  # where this text starts in the file


def provenance(record: RunRecord) -> list[Fact]:
    """Source, commit and dirty flag, entry point, command, environment, as recorded."""
    source, env = record.source, record.environment
    facts = [
        Fact("source", str(source.get("uri") or "")),
        Fact("repository", str(source.get("repo_url") or "")),
        Fact("commit", str(source.get("commit") or "")),
        Fact("branch", str(source.get("branch") or "")),
        Fact("version", str(source.get("version") or "")),
        Fact("dirty", _dirty(source.get("dirty"))),
        Fact("diff digest", str(source.get("diff_digest") or "")),
        Fact("entry point", record.entry_point),
        Fact("command", record.command, pre=True),
        Fact("backend", record.backend),
        Fact("environment manager", str(env.get("manager") or "")),
        Fact("environment key", str(env.get("key") or "")),
        Fact("interpreter", str(env.get("python") or env.get("interpreter") or "")),
        Fact("image digest", str(env.get("image_digest") or env.get("digest") or "")),
        Fact("image", str(env.get("image") or "")),
    ]
    shown = {"manager", "key", "python", "interpreter", "image_digest", "digest", "image", "lock"}
    facts += [Fact(key, _text(value)) for key, value in env.items() if key not in shown]
    return [fact for fact in facts if fact.value]


def locked_packages(record: RunRecord) -> list[str]:
    """The lock as lines (a lock file's text, or a list of pinned requirements)."""
    lock = record.environment.get("lock")
    if isinstance(lock, str):
        return [line for line in lock.splitlines() if line.strip()]
    if isinstance(lock, list):
        return [_text(item) for item in lock]
    if isinstance(lock, dict):
        return [f"{key}=={_text(value)}" for key, value in lock.items()]
    return []


def environment_facts(record: RunRecord) -> dict[str, str]:
    """The environment as flat text, for comparing runs side by side."""
    facts = {f"env.{key}": _text(value) for key, value in record.environment.items()}
    for key in ("commit", "dirty", "diff_digest", "uri"):
        if key in record.source:
            facts[f"source.{key}"] = _text(record.source[key])
    facts["backend"] = record.backend
    facts["entry point"] = record.entry_point
    facts["command"] = record.command
    return facts


def _dirty(value: Any) -> str:
    return (
        {True: "yes (uncommitted changes)", False: "no"}.get(value, "") if value is not None else ""
    )


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def read_log(folder: Path, offset: int, limit: int) -> LogChunk:
    """Up to ``limit`` bytes of the run's log from ``offset`` (a negative offset: the tail)."""
    path = folder / LOG_FILE
    try:
        with open(path, "rb") as log:
            size = os.fstat(log.fileno()).st_size
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            log.seek(start)
            data = log.read(limit)
    except FileNotFoundError:
        return LogChunk("", 0, 0)
    # a chunk may end inside a UTF-8 character: its first bytes are left for the next read
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data, final=False)
    pending = len(decoder.getstate()[0])
    return LogChunk(text, start + len(data) - pending, start)


def read_diff(folder: Path) -> str | None:
    """The stored ``git diff HEAD`` of a dirty run, capped; None when there is none."""
    try:
        with open(folder / DIFF_FILE, "rb") as diff:
            data = diff.read(DIFF_CAP + 1)
    except FileNotFoundError:
        return None
    text = data[:DIFF_CAP].decode("utf-8", errors="replace")
    return text + ("\n[... diff cut at 1 MiB ...]" if len(data) > DIFF_CAP else "")
