"""How an entry point reaches its run (the transport variables), and moving what it logged to a
journal (tracking.jsonl) into the tracking store."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner.atomic import copy_atomically
from runner.errors import BackendError, RunnerError
from runner.home import run_artifacts_dir, runner_home, tracking_uri
from runner.tracking import JOURNAL

if TYPE_CHECKING:
    from runner.backend import Transport
    from runner.store import Metric, Store

T = TypeVar("T")
WARNING_TAG = "runner.ingest_warning"
INT64 = range(-(2**63), 2**63)  # what both SQLite and PostgreSQL store as an integer


def run_variables(run_id: str, experiment: str, transport: Transport) -> dict[str, str]:
    """What every entry point gets to log into its own run over ``transport``.

    ``journal``: a file in the run's artifacts directory that the runner ingests (the backend
    makes that directory visible to the entry point). ``http``: the tracking server itself.
    """
    variables = {
        "RUNNER_RUN_ID": run_id,
        "RUNNER_TRACKING_URI": tracking_uri(),
        "RUNNER_EXPERIMENT": experiment,
        "RUNNER_TRACKING_TRANSPORT": transport,
    }
    if transport == "journal":
        variables["RUNNER_ARTIFACTS_DIR"] = str(run_artifacts_dir(run_id))
    token = os.environ.get("RUNNER_TRACKING_TOKEN")
    if transport == "http" and token:
        variables["RUNNER_TRACKING_TOKEN"] = token  # the server's token, if it needs one
    return variables


def check_transport(backend: str, transport: Transport) -> None:
    """An entry point that logs over HTTP needs a tracking server, not a database URL."""
    if transport == "http" and not tracking_uri().startswith(("http://", "https://")):
        raise BackendError(
            f"backend {backend!r} runs entry points on other machines, which log to their run "
            "over HTTP: RUNNER_TRACKING_URI must name a tracking server (http://...)",
            hint="start one with `runner server` and set RUNNER_TRACKING_URI to its URL",
        )


def tracking_pythonpath() -> str:
    """A directory holding only ``runner_tracking.py``, for environments without runner."""
    lib = runner_home() / "lib"
    target = lib / "runner_tracking.py"
    source = Path(__file__).parents[1] / "tracking.py"
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        copy_atomically(source, target)  # concurrent runs may copy it at once
    return str(lib)


class JournalReader:
    """Reads complete lines appended since the last call (the writer may still be running),
    keeps what the store has not taken yet, and counts the records it had to skip."""

    def __init__(self, run_id: str) -> None:
        self.path = run_artifacts_dir(run_id) / JOURNAL
        self.offset = 0
        self.pending = Pending()
        self.skipped = 0
        self.first_reason = ""
        self.reported = 0  # how many skips the warning tag on the run already counts
        self.store_down: Exception | None = None  # why the store took nothing this time

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [_parse(line) for line in complete.splitlines() if line.strip()]

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.first_reason = self.first_reason or reason

    def warning(self) -> str:
        """What the run's warning tag says: the first reason, and how many were skipped."""
        if self.skipped == 1:
            return self.first_reason
        return f"{self.skipped} logged records were skipped; the first: {self.first_reason}"


@dataclass
class Pending:
    """Records read from the journal that the store has not taken yet."""

    metrics: list[Metric] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


def _parse(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {"t": "unreadable", "why": "a journal line is not valid JSON"}
    return (
        record
        if isinstance(record, dict)
        else {"t": "unreadable", "why": "a journal line is not a JSON object"}
    )


def ingest(store: Store, run_id: str, reader: JournalReader) -> int:
    """Write new journal records to the store; returns how many were applied.

    One bad record never costs another: records the store's rules refuse are skipped before the
    batch, a batch refused anyway is split until the refused records stand alone, and each
    skip is counted in the run's ``runner.ingest_warning`` tag. While the store is down,
    nothing is dropped: what it did not take is kept for the next call, and the store's
    error is raised once the rest is written.
    """
    for record in reader.read_new():
        _add(record, reader)
    pending, skipped, before = reader.pending, reader.skipped, reader.pending.count()
    refuse = functools.partial(_refused, store, run_id, reader)
    _flush(lambda part: store.log_metrics(run_id, part), pending.metrics, refuse)
    _flush(lambda part: store.log_params(run_id, dict(part)), pending.params, refuse)
    _flush(lambda part: store.set_tags(run_id, dict(part)), pending.tags, refuse)
    applied = before - pending.count() - (reader.skipped - skipped)
    if reader.store_down is not None:
        error, reader.store_down = reader.store_down, None
        raise error  # the skips are reported on a later call, once the store is back
    _report_skips(store, run_id, reader)
    return applied


def _flush(
    write: Callable[[list[T]], None], items: list[T], refuse: Callable[[Exception], bool]
) -> None:
    """Write the pending ``items``, keeping those the store did not take."""
    items[:] = _write_all(write, list(items), refuse)


def _add(record: dict[str, Any], reader: JournalReader) -> None:
    try:
        _collect(record, reader.pending)
    except (KeyError, TypeError, ValueError, OverflowError, RunnerError) as exc:
        reader.skip(_reason(record, exc))  # a hand-written or torn record, never fatal


def _reason(record: dict[str, Any], exc: Exception) -> str:
    if isinstance(exc, RunnerError):
        return exc.message
    if isinstance(exc, KeyError):
        return f"a {record.get('t')} record has no {exc}"
    return f"a {record.get('t')} record is malformed: {exc}"


def _collect(rec: dict[str, Any], pending: Pending) -> None:
    """Queue one record, refusing what the store would refuse (its own key rule)."""
    from runner.store.records import check_key

    kind = rec.get("t")
    if kind == "unreadable":
        raise ValueError(rec["why"])
    if kind not in ("metric", "param", "tag"):
        return  # a kind this runner does not know is for a newer one: not an error
    key = str(rec["key"])
    check_key(kind, key)
    if kind == "metric":
        pending.metrics.append((key, float(rec["value"]), _int64(rec["step"]), _int64(rec["ts"])))
    elif kind == "param":
        pending.params.append((key, str(rec["value"])))
    else:
        pending.tags.append((key, str(rec["value"])))


def _int64(value: Any) -> int:
    number = int(value)
    if number not in INT64:
        raise ValueError(f"{number} does not fit in 64 bits")
    return number


def _write_all(
    write: Callable[[list[T]], None], items: list[T], refuse: Callable[[Exception], bool]
) -> list[T]:
    """Write ``items``, halving a refused batch until each refused item is alone and then
    ``refuse``-d (skipped); returns the items left unwritten because the store is down."""
    parts = [items] if items else []
    while parts:
        part = parts.pop()
        try:
            write(part)
        except Exception as exc:  # any refusal: the store may raise more than StoreError
            if len(part) > 1:
                parts += [part[len(part) // 2 :], part[: len(part) // 2]]  # first half next
            elif not refuse(exc):
                return [*part, *(item for rest in reversed(parts) for item in rest)]
    return []


def _refused(store: Store, run_id: str, reader: JournalReader, exc: Exception) -> bool:
    """A lone record was refused: it is bad if the store takes the warning about it (the store
    is up), else the store is down and the record is kept (False)."""
    before = reader.skipped, reader.first_reason
    reader.skip(exc.message if isinstance(exc, RunnerError) else f"{exc!r}")
    try:
        store.set_tags(run_id, {WARNING_TAG: reader.warning()})
    except Exception:
        reader.skipped, reader.first_reason = before
        reader.store_down = exc
        return False
    reader.reported = reader.skipped
    return True


def _report_skips(store: Store, run_id: str, reader: JournalReader) -> None:
    if reader.skipped > reader.reported:
        store.set_tags(run_id, {WARNING_TAG: reader.warning()})
        reader.reported = reader.skipped
