"""What goes into the store: validation, ids, names, times, JSON columns, rows to write."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from runner.errors import RunNotFound, StoreError
from runner.status import RunStatus
from runner.store import Metric, NewRun

SOURCE_KEYS = (
    "uri",
    "subdirectory",
    "version",
    "commit",
    "branch",
    "repo_url",
    "dirty",
    "diff_digest",
)
# Every SQLite connection waits up to 30 s for the writer instead of failing at once and enforces
# foreign keys. synchronous=NORMAL skips an fsync per commit: in WAL mode a process crash loses
# no commit and a power cut can only drop the latest ones, never corrupt the file.
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 30000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)
MIN_PREFIX = 6
MAX_KEY = 256
# Keeps ``run_id IN (...)`` well below every database's bound-parameter limit.
CHUNK = 500

KeyValue = tuple[str, str, Any]  # (run_id, key, value) as selected from params/tags/latest_metrics
MetricRow = tuple[str, str, float | None, int, int]

_HEX = re.compile(r"^[0-9a-f]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_ADJECTIVES = (
    "amber", "brave", "calm", "clever", "crisp", "dapper", "eager", "fuzzy", "gentle", "glad",
    "honest", "jolly", "keen", "lively", "lucid", "merry", "nimble", "polite", "quiet", "rapid",
    "sleek", "steady", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
_NOUNS = (
    "badger", "beacon", "bison", "comet", "crane", "delta", "falcon", "fern", "gecko", "harbor",
    "heron", "koala", "lantern", "lynx", "maple", "meadow", "otter", "panda", "pebble", "quartz",
    "raven", "river", "salmon", "sparrow", "tiger", "tulip", "walrus", "willow",
)  # fmt: skip


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_utc(ms: int | None) -> str | None:
    """``2024-05-01T12:00:00.123Z`` for milliseconds since the epoch; None stays None."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def new_run_id() -> str:
    return uuid.uuid4().hex


def generate_run_name() -> str:
    """A short memorable name such as ``brave-otter-417``."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"


def dump_json(value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot record {dict(value)!r} as JSON: {exc}") from exc


def load_json(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def check_key(kind: str, key: str) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise StoreError(f"{kind} key {key!r} must be a string of 1 to {MAX_KEY} characters")


def key_values(kind: str, run_id: str, mapping: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(run_id, key, value) rows for params or tags, refusing keys and values that are not text."""
    for key, value in mapping.items():
        check_key(kind, key)
        if not isinstance(value, str):
            raise StoreError(f"{kind} {key!r} must be a string, got {type(value).__name__}")
    return [(run_id, key, value) for key, value in mapping.items()]


def new_params(
    run_id: str, logged: Mapping[str, str], params: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """Rows for params not logged yet; re-logging the same value is fine, changing one is not."""
    for key, value in params.items():
        if key in logged and logged[key] != value:
            raise StoreError(
                f"param {key!r} of run {run_id} is already {logged[key]!r}; cannot change it "
                f"to {value!r}",
                hint="parameters are immutable; record changing values as tags or metrics",
            )
    return [row for row in key_values("param", run_id, params) if row[1] not in logged]


def new_run_row(new: NewRun) -> dict[str, Any]:
    """The ``runs`` row for a new SCHEDULED run; the caller adds ``experiment_id``."""
    check_experiment(new.experiment)
    if new.parent_run_id is not None and not _RUN_ID.match(new.parent_run_id):
        raise StoreError(f"parent run id {new.parent_run_id!r} is not a full run id")
    return {
        "run_id": new_run_id(),
        "run_name": new.run_name or generate_run_name(),
        "status": RunStatus.SCHEDULED.value,
        "start_time": now_ms(),
        "end_time": None,
        "exit_code": None,
        "failure_reason": None,
        "entry_point": new.entry_point,
        "command": new.command,
        "backend": new.backend,
        "source": source_json(new.source),
        "environment": environment_json(new.environment),
        "parent_run_id": new.parent_run_id,
        "runner_pid": new.runner_pid,
        "runner_host": new.runner_host,
        "runner_start": new.runner_start,
        # beating from creation lets another host tell a dead runner of a SCHEDULED run
        "heartbeat": now_ms(),
    }


def check_experiment(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_KEY:
        raise StoreError(f"experiment name {name!r} must be a string of 1 to {MAX_KEY} characters")


def source_json(source: Mapping[str, Any]) -> str:
    unknown = sorted(set(source) - set(SOURCE_KEYS))
    if unknown:
        raise StoreError(
            f"unknown source fields: {', '.join(unknown)}; expected {', '.join(SOURCE_KEYS)}"
        )
    for key, value in source.items():
        kind = bool if key == "dirty" else str
        if value is not None and not isinstance(value, kind):
            raise StoreError(f"source {key!r} must be a {kind.__name__} or None, not {value!r}")
    return dump_json(source)


def environment_json(environment: Mapping[str, Any]) -> str:
    if not environment.get("manager"):
        raise StoreError("the run environment must name its manager (e.g. {'manager': 'local'})")
    return dump_json(environment)


def update_values(**fields: Any) -> dict[str, Any]:
    """The columns ``update_run`` changes: the arguments that are not None, JSON-encoded."""
    values = {name: value for name, value in fields.items() if value is not None}
    if "environment" in values:
        values["environment"] = environment_json(values["environment"])
    return values


def parse_status(status: RunStatus | str) -> RunStatus:
    text = status.value if isinstance(status, RunStatus) else str(status).upper()
    known = [member.value for member in RunStatus]
    if text not in known:
        raise StoreError(f"unknown run status {status!r}; expected one of {', '.join(known)}")
    return RunStatus(text)


def terminal_status(status: RunStatus | str) -> str:
    value = parse_status(status)
    if not value.is_terminal:
        raise StoreError(f"a run can only finish as FINISHED, FAILED or KILLED, not {value.value}")
    return value.value


def must_start(run_id: str, status: str) -> None:
    """Refuse to start a run that has already ended; starting a RUNNING run is a no-op."""
    if RunStatus(status).is_terminal:
        raise StoreError(f"cannot start run {run_id}: it has already ended as {status}")


def check_limit(limit: int | None, what: str = "run") -> None:
    if limit is not None and limit < 0:
        raise StoreError(f"the {what} limit must be zero or more, not {limit}")


def not_found(run_id: str) -> RunNotFound:
    return RunNotFound(f"run {run_id!r} not found", hint="`runner runs list` shows run ids")


def prefix_bounds(run_id: str) -> tuple[str, str]:
    """[low, high) bounds of the run ids starting with ``run_id``: a primary-key range scan."""
    prefix = run_id.lower()
    if len(prefix) < MIN_PREFIX or not _HEX.match(prefix):
        raise not_found(run_id)
    return prefix, prefix + "g"  # 'g' sorts after every hex digit


def single_match(run_id: str, matches: Sequence[str]) -> str:
    if not matches:
        raise not_found(run_id)
    if len(matches) > 1:
        raise StoreError(
            f"run id prefix {run_id!r} is ambiguous: it matches {len(matches)} runs",
            hint="give more characters of the run id",
        )
    return matches[0]


def metric_rows(run_id: str, metrics: Iterable[Metric]) -> list[MetricRow]:
    """Rows for ``metrics``; NaN becomes NULL since SQLite cannot store it."""
    try:
        rows = [
            (
                run_id,
                key,
                number if (number := float(value)) == number else None,
                int(step),
                int(ts),
            )
            for key, value, step, ts in metrics
        ]
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a metric must be (key, number, step, timestamp): {exc}") from exc
    for key in {row[1] for row in rows}:  # once per key: this runs for every batch of metrics
        check_key("metric", key)
    return rows


def newest_per_key(rows: Sequence[MetricRow]) -> list[MetricRow]:
    """Each key's newest row of a batch (max step, then timestamp, then logged last)."""
    newest: dict[str, MetricRow] = {}
    for row in rows:
        current = newest.get(row[1])
        # Spelled out rather than comparing row[3:] slices: this loop sees every logged metric.
        if (
            current is None
            or row[3] > current[3]
            or (row[3] == current[3] and row[4] >= current[4])
        ):
            newest[row[1]] = row
    return list(newest.values())


def check_new_run(new: NewRun) -> None:
    """What creating ``new`` would refuse, without making an id or a name (the REST client)."""
    check_experiment(new.experiment)
    if new.parent_run_id is not None and not _RUN_ID.match(new.parent_run_id):
        raise StoreError(f"parent run id {new.parent_run_id!r} is not a full run id")
    source_json(new.source)
    environment_json(new.environment)
    key_values("param", "", new.parameters)
    key_values("tag", "", new.tags)
