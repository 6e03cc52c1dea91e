"""An entry point written for MLflow: logs everything through the real client, reads it back.

Prints one ``RESULT=<json>`` line with what the client read back from the tracking server.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import mlflow
import mlflow.sklearn
from mlflow.entities import Metric, Param, RunTag
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

with mlflow.start_run() as run:  # resumes the runner's run through MLFLOW_RUN_ID
    run_id = run.info.run_id
    mlflow.log_param("alpha", sys.argv[1])  # the runner recorded it from -P already: same value
    mlflow.log_params({"solver": "auto", "fold": 3})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"r2": 0.5, "nan_metric": float("nan")}, step=4)
    mlflow.set_tag("stage", "test")
    mlflow.set_tags({"team": "runner", "note": "ünïcode"})
    client = mlflow.MlflowClient()
    client.log_batch(
        run_id,
        metrics=[Metric("batch_metric", 2.5, 1700000000000, 0)],
        params=[Param("batch_param", "b")],
        tags=[RunTag("batch_tag", "t")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "note.txt"
        note.write_text("hello from mlflow")
        mlflow.log_artifact(str(note))
        (Path(tmp) / "reports" / "deep").mkdir(parents=True)
        (Path(tmp) / "reports" / "a.csv").write_text("x,y\n1,2\n")
        (Path(tmp) / "reports" / "deep" / "b.txt").write_text("b")
        mlflow.log_artifacts(str(Path(tmp) / "reports"), artifact_path="reports")
    x, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=float(sys.argv[1])).fit(x, y)
    info = mlflow.sklearn.log_model(model, name="model")
    fetched = client.get_run(run_id)
    experiment = mlflow.get_experiment(fetched.info.experiment_id)
    found = client.search_runs(
        [fetched.info.experiment_id],
        "params.solver = 'auto' and metrics.loss < 0.3 and tags.stage = 'test'",
        order_by=["metrics.r2 DESC"],
    )
    missed = client.search_runs([fetched.info.experiment_id], "params.solver = 'other'")
    loaded = mlflow.sklearn.load_model(info.model_uri)
    result = {
        "run_id": run_id,
        "env_run_id": os.environ.get("RUNNER_RUN_ID"),
        "experiment_id": fetched.info.experiment_id,
        "env_experiment_id": os.environ.get("MLFLOW_EXPERIMENT_ID"),
        "experiment_name": experiment.name,
        "by_name": mlflow.get_experiment_by_name(experiment.name).experiment_id,
        "params": fetched.data.params,
        "metrics": {k: (None if v != v else v) for k, v in fetched.data.metrics.items()},
        "tags": {k: v for k, v in fetched.data.tags.items() if not k.startswith("mlflow.")},
        "history": [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")],
        "search": [r.info.run_id for r in found],
        "search_missed": [r.info.run_id for r in missed],
        "artifacts": sorted(a.path for a in client.list_artifacts(run_id)),
        "report_files": sorted(a.path for a in client.list_artifacts(run_id, "reports")),
        "downloaded": Path(client.download_artifacts(run_id, "note.txt")).read_text(),
        "model_uri": info.model_uri,
        "model_status": str(client.get_logged_model(info.model_id).status),
        "prediction_matches": bool((loaded.predict(x[:3]) == model.predict(x[:3])).all()),
        "status_inside": fetched.info.status,
    }
    print("RESULT=" + json.dumps(result))
