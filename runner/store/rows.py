"""What comes out of the store: database rows mapped to RunRecord, LiveRun and MetricPoint."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.status import RunStatus
from runner.store import LiveRun, MetricPoint, RunnerProcess, RunRecord
from runner.store.database import Row
from runner.store.records import SOURCE_KEYS, KeyValue, iso_utc, load_json

# Where a record's children come from, by the field they fill.
CHILD_TABLES = {"parameters": "params", "tags": "tags", "metrics": "latest_metrics"}
Children = Mapping[str, Iterable[KeyValue]]


def run_records(
    rows: Sequence[Row], experiments: Mapping[int, str], children: Children
) -> list[RunRecord]:
    """Records in the order of ``rows`` (``statements.RECORD_COLUMNS``, then the tiebreak)."""
    grouped: dict[str, dict[str, dict[str, Any]]] = {row[0]: {} for row in rows}
    for field, found in children.items():
        for run_id, key, value in found:
            grouped[run_id].setdefault(field, {})[key] = value
    return [run_record(row, experiments[row[1]], grouped[row[0]]) for row in rows]


def run_record(row: Row, experiment: str, children: Mapping[str, dict[str, Any]]) -> RunRecord:
    run_id, _, name, status, start, end, exit_code, reason, entry, command, *rest = row
    source_text, environment, backend, parent, _tiebreak = rest
    source = load_json(source_text)
    return RunRecord(
        run_id=run_id,
        experiment=experiment,
        run_name=name,
        status=RunStatus(status),
        start_time=iso_utc(start) or "",
        end_time=iso_utc(end),
        exit_code=exit_code,
        failure_reason=reason,
        entry_point=entry,
        parameters=children.get("parameters", {}),
        command=command,
        source={key: source.get(key) for key in SOURCE_KEYS},
        environment=load_json(environment),
        backend=backend,
        tags=children.get("tags", {}),
        metrics=children.get("metrics", {}),
        parent_run_id=parent,
    )


def live_run(row: Row) -> LiveRun:
    """A LiveRun from a row of ``statements.LIVE_COLUMNS``."""
    run_id, status, backend, pid, host, started, heartbeat = row
    return LiveRun(run_id, RunStatus(status), backend, pid, host, started, heartbeat)


def runner_process(row: Row) -> RunnerProcess:
    pid, start = row
    return RunnerProcess(int(pid), start)


def metric_point(row: Row) -> MetricPoint:
    step, timestamp, value = row[:3]
    return MetricPoint(int(step), int(timestamp), value)
