"""Writes a client names with keys: each key's batch is applied once, however often it is sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from runner.errors import StoreError
from runner.store import Metric, records
from runner.store import statements as sql
from runner.store.database import Session

MAX_KEY = 64


@dataclass(frozen=True)
class Batch:
    """Metrics, params and tags that one client key stands for."""

    metrics: Sequence[Metric] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def check_write_key(key: str) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise StoreError(f"write key {key!r} must be a string of 1 to {MAX_KEY} characters")


def fresh_keys(session: Session, run_id: str, keys: Sequence[str]) -> list[str]:
    """The ``keys`` not applied to the run yet, in order, each once."""
    known: set[str] = set()
    unique = list(dict.fromkeys(keys))
    for chunk in records.chunks(unique):
        query = sql.KNOWN_WRITE_KEYS.format(marks=", ".join("?" * len(chunk)))
        known.update(key for (key,) in session.rows(query, (run_id, *chunk)))
    return [key for key in unique if key not in known]


def merged(batches: Sequence[Batch]) -> Batch:
    """One batch of all; a param given two different values is refused."""
    metrics: list[Metric] = []
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    for batch in batches:
        metrics.extend(batch.metrics)
        for key, value in batch.params.items():
            if params.setdefault(key, value) != value:
                raise StoreError(f"param {key!r} is given two values: {params[key]!r}, {value!r}")
        tags.update(batch.tags)
    return Batch(metrics, params, tags)


def write(session: Session, run_id: str, batch: Batch, keys: Sequence[str]) -> None:
    """Apply ``batch`` and remember ``keys``, inside the caller's write transaction."""
    metric_rows = records.metric_rows(run_id, batch.metrics)
    tag_rows = records.key_values("tag", run_id, batch.tags)
    logged: dict[str, str] = (
        dict(session.rows(sql.PARAMS_OF_RUN, (run_id,))) if batch.params else {}
    )
    session.executemany(sql.INSERT_PARAM, records.new_params(run_id, logged, batch.params))
    session.executemany(sql.UPSERT_TAG, tag_rows)
    session.executemany(sql.INSERT_METRIC, metric_rows)
    session.executemany(sql.UPSERT_LATEST, records.newest_per_key(metric_rows))
    session.executemany(sql.INSERT_WRITE_KEY, [(run_id, key) for key in keys])
