"""Runner records in MLflow's JSON shapes: runs, experiments, metrics (protobuf field names)."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Mapping
from typing import Any

from runner.store import MetricPoint, RunRecord

ARTIFACT_SCHEME = "mlflow-artifacts:/"
# Tags the runner keeps for itself (the logged models of a run, its inputs); MLflow clients
# see them as what they are, never as tags.
HIDDEN_TAG_PREFIX = "runner.logged_model."
INPUTS_TAG = "runner.mlflow_inputs"


def millis(iso: str | None) -> int | None:
    """Milliseconds since the epoch of the store's ``2024-05-01T12:00:00.123Z`` times."""
    if not iso:
        return None
    seconds, _, fraction = iso.removesuffix("Z").partition(".")
    whole = calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S"))
    return whole * 1000 + int((fraction or "0")[:3].ljust(3, "0"))


def run_artifact_uri(run_id: str) -> str:
    """Where the client sends a run's artifacts: this server's proxy, resolved by the client
    against its own tracking URI (so a container's host name works as well as the host's)."""
    return f"{ARTIFACT_SCHEME}{run_id}"


def metric_json(key: str, point: MetricPoint) -> dict[str, Any]:
    value = float("nan") if point.value is None else point.value
    return {"key": key, "value": value, "timestamp": point.timestamp, "step": point.step}


def pairs(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(mapping.items())]


def visible_tags(record: RunRecord) -> dict[str, str]:
    """The run's tags as MLflow names what the runner records in its own fields."""
    derived = {
        "mlflow.runName": record.run_name,
        "mlflow.source.type": "PROJECT",
        "mlflow.source.name": str(record.source.get("uri") or ""),
        "mlflow.project.entryPoint": record.entry_point,
        "mlflow.project.backend": record.backend,
        "mlflow.project.env": str(record.environment.get("manager") or ""),
    }
    if record.source.get("commit"):
        derived["mlflow.source.git.commit"] = str(record.source["commit"])
    if record.parent_run_id:
        derived["mlflow.parentRunId"] = record.parent_run_id
    own = {
        k: v
        for k, v in record.tags.items()
        if not k.startswith(HIDDEN_TAG_PREFIX) and k != INPUTS_TAG
    }
    return {**derived, **own}


def run_info(record: RunRecord, experiment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": record.run_id,
        "run_uuid": record.run_id,
        "run_name": record.run_name,
        "experiment_id": experiment_id,
        "user_id": record.tags.get("mlflow.user", ""),
        "status": record.status.value,
        "start_time": millis(record.start_time),
        "artifact_uri": run_artifact_uri(record.run_id),
        "lifecycle_stage": "active",
    }
    if record.end_time:
        info["end_time"] = millis(record.end_time)
    return info


def run_json(
    record: RunRecord,
    experiment_id: str,
    latest: Mapping[str, MetricPoint],
    model_outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ``Run`` message: info, data (latest metrics, params, tags), inputs, outputs."""
    return {
        "info": run_info(record, experiment_id),
        "data": {
            "metrics": [metric_json(key, point) for key, point in sorted(latest.items())],
            "params": pairs(record.parameters),
            "tags": pairs(visible_tags(record)),
        },
        "inputs": json.loads(record.tags.get(INPUTS_TAG, "{}")),
        "outputs": {"model_outputs": model_outputs} if model_outputs else {},
    }


def experiment_json(experiment_id: int, name: str, created: int) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment_id),
        "name": name,
        "artifact_location": ARTIFACT_SCHEME,
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": created,
        "tags": [],
    }
