"""MLflow 3's logged models, kept inside the run that logged them.

A model's files go to the run's own artifacts (``<name>/``, the folder MLflow 2 used), and its
record (name, status, params, tags, metrics) is a JSON tag ``runner.logged_model.<model id>``
of that run, so everything a model is lands in the runner run. Model ids name their run:
``m-<run id>-<8 hex digits>``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runner.server.mlflow import protocol as p
from runner.server.mlflow.entities import HIDDEN_TAG_PREFIX, pairs, run_artifact_uri
from runner.store import Metric, RunRecord

if TYPE_CHECKING:
    from runner.server.mlflow.experiments import Experiments, ExperimentStore

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
_MODEL_ID = re.compile(r"^m-([0-9a-f]{32})-[0-9a-f]{8}$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]{0,127}$")


class LoggedModels:
    """The handlers of ``/mlflow/logged-models/...``; model records live in run tags."""

    def __init__(self, store: ExperimentStore, experiments: Experiments) -> None:
        self.store = store
        self.experiments = experiments
        self._lock = threading.Lock()  # one read-modify-write of a record at a time

    # -- handlers ------------------------------------------------------------------------

    def create(self, fields: p.Fields) -> dict[str, Any]:
        run_id = p.text(fields, "source_run_id", required=False)
        if not run_id:
            raise p.invalid(
                "source_run_id",
                "runner keeps models inside runs: log the model from inside a runner run",
            )
        record = self.store.get_run(run_id)
        name = p.text(fields, "name", required=False, default="model")
        if not _NAME.match(name):
            raise p.invalid("name", f"{name!r} must be letters, digits, '_', '-' or '.'")
        model_id = f"m-{record.run_id}-{secrets.token_hex(4)}"
        now = int(time.time() * 1000)
        model = {
            "name": name,
            "path": self._free_path(record, name, model_id),
            "status": "LOGGED_MODEL_PENDING",
            "created": now,
            "updated": now,
            "model_type": p.text(fields, "model_type", required=False),
            "params": p.key_values(fields, "params"),
            "tags": p.key_values(fields, "tags"),
            "metrics": [],
            "output_step": None,
        }
        self._save(record.run_id, model_id, model)
        return {"model": self._message(record, model_id, model)}

    def get(self, fields: p.Fields) -> dict[str, Any]:
        record, model_id, model = self._load(p.text(fields, "model_id"))
        return {"model": self._message(record, model_id, model)}

    def finalize(self, fields: p.Fields) -> dict[str, Any]:
        status = p.text(fields, "status")
        if status not in STATUSES:
            raise p.invalid("status", f"must be one of {', '.join(STATUSES)}, not {status!r}")
        return self._change(p.text(fields, "model_id"), lambda model: model.update(status=status))

    def set_tags(self, fields: p.Fields) -> dict[str, Any]:
        tags = p.key_values(fields, "tags")
        return self._change(p.text(fields, "model_id"), lambda model: model["tags"].update(tags))

    def delete_tag(self, fields: p.Fields) -> dict[str, Any]:
        key = p.text(fields, "tag_key")
        self._change(p.text(fields, "model_id"), lambda model: model["tags"].pop(key, None))
        return {}

    def log_params(self, fields: p.Fields) -> dict[str, Any]:
        params = p.key_values(fields, "params")
        self._change(p.text(fields, "model_id"), lambda model: model["params"].update(params))
        return {}

    def search(self, fields: p.Fields) -> dict[str, Any]:
        """The models of the runs of ``experiment_ids``, newest first; the filter may name
        the model (``name = '...'``, which MLflow's client sends to find a run's model)."""
        from runner.server.mlflow.experiments import name_filter

        matches = name_filter(p.text(fields, "filter", required=False))
        found = [
            self._message(record, model_id, model)
            for experiment_id in p.strings(fields, "experiment_ids")
            for record in self.store.iter_runs(self.experiments.by_id(experiment_id)[1])
            for model_id, model in _models_of(record)
            if matches(model["name"])
        ]
        found.sort(key=lambda m: m["info"]["creation_timestamp_ms"], reverse=True)
        limit = p.integer(fields, "max_results", 100) or 100
        offset = p.integer({"page_token": fields.get("page_token")}, "page_token", 0) or 0
        body: dict[str, Any] = {"models": found[offset : offset + limit]}
        if offset + limit < len(found):
            body["next_page_token"] = str(offset + limit)
        return body

    # -- used by the run endpoints -------------------------------------------------------

    def outputs(self, record: RunRecord) -> list[dict[str, Any]]:
        """The run's ``model_outputs``: the models LogOutputs named, with their step."""
        return [
            {"model_id": model_id, "step": model["output_step"]}
            for model_id, model in _models_of(record)
            if model.get("output_step") is not None
        ]

    def mark_output(self, record: RunRecord, model_id: str, step: int, label: str) -> None:
        if not any(found == model_id for found, _ in _models_of(record)):
            raise p.invalid(f"{label}.model_id", f"run {record.run_id} has no model {model_id}")
        self._change(model_id, lambda model: model.update(output_step=step))

    def add_metrics(self, record: RunRecord, metrics: list[tuple[Metric, str]]) -> None:
        """Metrics logged with a ``model_id`` are kept on that model too."""
        for metric, model_id in metrics:
            key, value, step, timestamp = metric
            point = {"key": key, "value": value, "step": step, "timestamp": timestamp}
            self._change(model_id, lambda model, pt=point: model["metrics"].append(pt))

    # -- records -------------------------------------------------------------------------

    def _free_path(self, record: RunRecord, name: str, model_id: str) -> str:
        taken = {model["path"] for _, model in _models_of(record)}
        return name if name not in taken else f"{name}-{model_id[-8:]}"

    def _load(self, model_id: str) -> tuple[RunRecord, str, dict[str, Any]]:
        match = _MODEL_ID.match(model_id)
        record = self.store.get_run(match.group(1)) if match else None
        text = record.tags.get(HIDDEN_TAG_PREFIX + model_id) if record else None
        if record is None or text is None:
            raise p.MlflowError(p.MISSING, f"Logged model with ID '{model_id}' not found.", 404)
        return record, model_id, json.loads(text)

    def _save(self, run_id: str, model_id: str, model: dict[str, Any]) -> None:
        text = json.dumps(model, sort_keys=True, separators=(",", ":"))
        self.store.set_tags(run_id, {HIDDEN_TAG_PREFIX + model_id: text})

    def _change(self, model_id: str, change: Any) -> dict[str, Any]:
        with self._lock:
            record, _, model = self._load(model_id)
            change(model)
            model["updated"] = int(time.time() * 1000)
            self._save(record.run_id, model_id, model)
        return {"model": self._message(record, model_id, model)}

    def _message(self, record: RunRecord, model_id: str, model: dict[str, Any]) -> dict[str, Any]:
        """A ``LoggedModel`` message."""
        return {
            "info": {
                "model_id": model_id,
                "experiment_id": self.experiments.id_of(record.experiment),
                "name": model["name"],
                "creation_timestamp_ms": model["created"],
                "last_updated_timestamp_ms": model["updated"],
                "artifact_uri": f"{run_artifact_uri(record.run_id)}/{model['path']}",
                "status": model["status"],
                "model_type": model["model_type"],
                "source_run_id": record.run_id,
                "tags": pairs(model["tags"]),
            },
            "data": {
                "params": pairs(model["params"]),
                "metrics": [
                    {**m, "run_id": record.run_id, "model_id": model_id} for m in model["metrics"]
                ],
            },
        }


def _models_of(record: RunRecord) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, value in record.tags.items():
        if key.startswith(HIDDEN_TAG_PREFIX):
            yield key.removeprefix(HIDDEN_TAG_PREFIX), json.loads(value)
