"""MLflow's run endpoints over the runner's runs: get, search, update, log metrics, params, tags.

The runner owns the lifecycle of its runs: an entry point's ``end_run`` (an UpdateRun with a
status) is recorded as the ``runner.mlflow_status`` tag and never decides how the run ends;
the exit code does. Runs are created by the runner only, never through this API.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import RunNotFound
from runner.server.mlflow import protocol as p
from runner.server.mlflow import search
from runner.server.mlflow.entities import INPUTS_TAG, run_info, run_json
from runner.store import Metric, RunRecord

if TYPE_CHECKING:
    from runner.server.mlflow.experiments import Experiments, ExperimentStore
    from runner.server.mlflow.models import LoggedModels

STATUS_TAG = "runner.mlflow_status"  # what the entry point said with end_run / UpdateRun
END_TIME_TAG = "runner.mlflow_end_time"
HISTORY_TAG = "mlflow.log-model.history"  # MLflow's own tag for LogModel
MAX_SEARCH = 50_000
DEFAULT_SEARCH = 1000
HISTORY_PAGE = 25_000
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


class Runs:
    """The handlers of ``/mlflow/runs/...`` and ``/mlflow/metrics/...``."""

    def __init__(
        self, store: ExperimentStore, experiments: Experiments, models: LoggedModels
    ) -> None:
        self.store = store
        self.experiments = experiments
        self.models = models

    def record(self, run_id: str) -> RunRecord:
        """The run with exactly this id (the store also accepts prefixes; MLflow does not)."""
        missing = p.MlflowError(p.MISSING, f"Run with id={run_id} not found", 404)
        if not _RUN_ID.match(run_id):
            raise missing
        try:
            return self.store.get_run(run_id)
        except RunNotFound as exc:
            raise missing from exc

    def run_message(self, record: RunRecord, experiment_id: str | None = None) -> dict[str, Any]:
        latest = self.store.latest_metrics(record.run_id)
        outputs = self.models.outputs(record)
        found = experiment_id or self.experiments.id_of(record.experiment)
        return run_json(record, found, latest, outputs)

    # -- reading -------------------------------------------------------------------------

    def get(self, fields: p.Fields) -> dict[str, Any]:
        return {"run": self.run_message(self.record(p.run_id(fields)))}

    def search(self, fields: p.Fields) -> dict[str, Any]:
        limit = p.integer(fields, "max_results", DEFAULT_SEARCH) or DEFAULT_SEARCH
        if not 0 < limit <= MAX_SEARCH:
            raise p.invalid("max_results", f"must be between 1 and {MAX_SEARCH}, not {limit}")
        offset = p.integer({"page_token": fields.get("page_token")}, "page_token", 0) or 0
        matches = search.matcher(search.parse_filter(p.text(fields, "filter", required=False)))
        found = [r for r in self._runs_of(p.strings(fields, "experiment_ids")) if matches(r)]
        ordered = search.sort_runs(found, p.strings(fields, "order_by"))
        ids = {name: str(number) for number, name, _ in self.store.experiments()}
        page = ordered[offset : offset + limit]
        body: dict[str, Any] = {"runs": [self.run_message(r, ids[r.experiment]) for r in page]}
        if offset + limit < len(ordered):
            body["next_page_token"] = str(offset + limit)
        return body

    def _runs_of(self, experiment_ids: list[str]) -> Iterator[RunRecord]:
        for experiment_id in experiment_ids:
            yield from self.store.iter_runs(experiment=self.experiments.by_id(experiment_id)[1])

    def metric_history(self, fields: p.Fields) -> dict[str, Any]:
        record = self.record(p.run_id(fields))
        key = p.text(fields, "metric_key")
        limit = p.integer(fields, "max_results", HISTORY_PAGE) or HISTORY_PAGE
        offset = p.integer({"page_token": fields.get("page_token")}, "page_token", 0) or 0
        points = list(self.store.metric_history(record.run_id, key, limit=offset + limit + 1))
        page = points[offset : offset + limit]
        body: dict[str, Any] = {
            "metrics": [
                {**_metric(key, pt.value, pt.timestamp, pt.step), "run_id": record.run_id}
                for pt in page
            ]
        }
        if len(points) > offset + limit:
            body["next_page_token"] = str(offset + limit)
        return body

    # -- writing -------------------------------------------------------------------------

    def create(self, fields: p.Fields) -> dict[str, Any]:
        raise p.MlflowError(
            p.INVALID,
            "runner records the runs it launches and creates none through the MLflow API: log "
            "into the run the runner started (mlflow.start_run() resumes it through "
            "MLFLOW_RUN_ID, or pass run_id=os.environ['RUNNER_RUN_ID'])",
        )

    def update(self, fields: p.Fields) -> dict[str, Any]:
        record = self.record(p.run_id(fields))
        tags: dict[str, str] = {}
        status = fields.get("status")
        if status is not None:
            if status not in _STATUSES:
                raise p.invalid("status", f"must be one of {', '.join(_STATUSES)}, not {status!r}")
            if status != "RUNNING":  # resuming says RUNNING: nothing to record
                tags[STATUS_TAG] = str(status)
        end_time = p.integer(fields, "end_time")
        if end_time is not None and status not in (None, "RUNNING"):
            tags[END_TIME_TAG] = str(end_time)
        run_name = p.text(fields, "run_name", required=False)
        if run_name and run_name != record.run_name:
            tags["mlflow.runName"] = run_name
        if tags:
            self.store.set_tags(record.run_id, tags)
        updated = self.store.get_run(record.run_id)
        return {"run_info": run_info(updated, self.experiments.id_of(updated.experiment))}

    def log_metric(self, fields: p.Fields) -> dict[str, Any]:
        self._log(p.run_id(fields), metrics=[fields])
        return {}

    def log_param(self, fields: p.Fields) -> dict[str, Any]:
        key = p.text(fields, "key")
        self._log(p.run_id(fields), params={key: _text_value(fields, "value")})
        return {}

    def set_tag(self, fields: p.Fields) -> dict[str, Any]:
        key = p.text(fields, "key")
        self._log(p.run_id(fields), tags={key: _text_value(fields, "value")})
        return {}

    def log_batch(self, fields: p.Fields) -> dict[str, Any]:
        self._log(
            p.run_id(fields),
            metrics=p.items(fields, "metrics"),
            params=p.key_values(fields, "params"),
            tags=p.key_values(fields, "tags"),
        )
        return {}

    def log_model(self, fields: p.Fields) -> dict[str, Any]:
        """MLflow 2's LogModel: the model's MLmodel JSON joins the run's history tag."""
        record = self.record(p.run_id(fields))
        try:
            model = json.loads(p.text(fields, "model_json"))
        except ValueError as exc:
            raise p.invalid("model_json", f"is not JSON: {exc}") from exc
        history = json.loads(record.tags.get(HISTORY_TAG, "[]"))
        self.store.set_tags(record.run_id, {HISTORY_TAG: json.dumps([*history, model])})
        return {}

    def log_inputs(self, fields: p.Fields) -> dict[str, Any]:
        """Datasets and models a run used, kept as given (each dataset once by name and
        digest) in the run's ``runner.mlflow_inputs`` tag and shown as the run's ``inputs``."""
        record = self.record(p.run_id(fields))
        inputs = json.loads(record.tags.get(INPUTS_TAG, "{}"))
        datasets = {_dataset_key(d): d for d in inputs.get("dataset_inputs", [])}
        for index, given in enumerate(p.items(fields, "datasets")):
            dataset = given.get("dataset")
            if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
                raise p.invalid(f"datasets[{index}].dataset", "must be an object with a name")
            datasets[_dataset_key(given)] = given
        models = {m["model_id"]: m for m in inputs.get("model_inputs", [])}
        for given in p.items(fields, "models"):
            models[p.text(given, "model_id")] = {"model_id": given["model_id"]}
        kept = {"dataset_inputs": list(datasets.values()), "model_inputs": list(models.values())}
        self.store.set_tags(record.run_id, {INPUTS_TAG: json.dumps(kept, sort_keys=True)})
        return {}

    def log_outputs(self, fields: p.Fields) -> dict[str, Any]:
        record = self.record(p.run_id(fields))
        for index, item in enumerate(p.items(fields, "models")):
            model_id = p.text(item, "model_id")
            step = p.integer(item, "step", 0) or 0
            self.models.mark_output(record, model_id, step, f"models[{index}]")
        return {}

    def _log(
        self,
        run_id: str,
        *,
        metrics: Sequence[p.Fields] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        record = self.record(run_id)
        parsed = [_parse_metric(item, f"metrics[{i}]") for i, item in enumerate(metrics)]
        for_models = [(m, i.get("model_id")) for m, i in zip(parsed, metrics, strict=True)]
        self.models.add_metrics(record, [(m, mid) for m, mid in for_models if mid])
        fresh = [m for m, mid in for_models if not mid or not self._already_logged(run_id, m)]
        if params:
            self.store.log_params(run_id, params)
        if tags:
            self.store.set_tags(run_id, tags)
        if fresh:
            self.store.log_metrics(run_id, fresh)

    def _already_logged(self, run_id: str, metric: Metric) -> bool:
        """MLflow re-logs a run's metrics with the model's id when a model is logged: those
        copies are kept on the model, not added to the run's history a second time."""
        key, value, step, timestamp = metric
        history = self.store.metric_history(run_id, key, after_step=step - 1, limit=10_000)
        return any(
            pt.step == step
            and pt.timestamp == timestamp
            and (pt.value == value or (pt.value is None and value != value))
            for pt in history
        )


def _dataset_key(given: p.Fields) -> tuple[str, str]:
    dataset = given.get("dataset") or {}
    return (str(dataset.get("name")), str(dataset.get("digest")))


def _parse_metric(item: p.Fields, label: str) -> Metric:
    try:
        key = p.text(item, "key")
        value = p.number(item, "value")
        timestamp = p.integer(item, "timestamp", int(time.time() * 1000))
        step = p.integer(item, "step", 0)
    except p.MlflowError as exc:
        raise p.MlflowError(exc.code, f"{label}: {exc.message}", exc.status) from exc
    assert timestamp is not None and step is not None
    return (key, value, step, timestamp)


def _metric(key: str, value: float | None, timestamp: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": float("nan") if value is None else value,
            "timestamp": timestamp, "step": step}  # fmt: skip


def _text_value(fields: p.Fields, name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise p.invalid(name, "must be a string")
    return value
