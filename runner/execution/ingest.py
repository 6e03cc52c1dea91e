"""How an entry point reaches its run (the transport variables), and moving what it logged to a
journal (tracking.jsonl) into the tracking store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.atomic import copy_atomically
from runner.errors import BackendError, StoreError
from runner.home import run_artifacts_dir, runner_home, tracking_uri
from runner.tracking import JOURNAL

if TYPE_CHECKING:
    from runner.backend import Transport
    from runner.store import Metric, Store


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
    """Reads complete lines appended since the last call (the writer may still be running)."""

    def __init__(self, run_id: str) -> None:
        self.path = run_artifacts_dir(run_id) / JOURNAL
        self.offset = 0

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


def _parse(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def ingest(store: Store, run_id: str, reader: JournalReader) -> int:
    """Write new journal records to the store; returns how many were applied."""
    records = reader.read_new()
    metrics: list[Metric] = []
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    for rec in records:
        try:
            _collect(rec, metrics, params, tags)
        except (KeyError, TypeError, ValueError):
            continue  # a hand-written or torn record is skipped, never fatal to the run
    if metrics:
        store.log_metrics(run_id, metrics)
    if params:
        try:
            store.log_params(run_id, params)
        except StoreError as exc:  # e.g. a logged param contradicting a run parameter
            tags["runner.ingest_warning"] = exc.message
    if tags:
        store.set_tags(run_id, tags)
    return len(metrics) + len(params) + len(tags)


def _collect(
    rec: dict[str, Any], metrics: list[Metric], params: dict[str, str], tags: dict[str, str]
) -> None:
    kind = rec.get("t")
    if kind == "metric":
        metrics.append((str(rec["key"]), float(rec["value"]), int(rec["step"]), int(rec["ts"])))
    elif kind == "param":
        params[str(rec["key"])] = str(rec["value"])
    elif kind == "tag":
        tags[str(rec["key"])] = str(rec["value"])
