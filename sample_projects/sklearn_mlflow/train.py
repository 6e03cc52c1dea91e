"""Elastic-net regression on scikit-learn's diabetes data, logged with MLflow's own API.

Nothing here knows about runner: under `runner run` every mlflow.* call lands in the
runner's run (parameters, a metric per epoch, a tag, an artifact and the model).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import SGDRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42


def rmse(model: SGDRegressor, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(mean_squared_error(y, model.predict(x))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--l1-ratio", type=float, default=0.15)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    x, y = load_diabetes(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=SEED)
    scaler = StandardScaler().fit(x_train)
    x_train_s, x_val_s = scaler.transform(x_train), scaler.transform(x_val)

    with mlflow.start_run() as run:  # resumes the run runner started (MLFLOW_RUN_ID)
        mlflow.log_params({"alpha": args.alpha, "l1_ratio": args.l1_ratio, "epochs": args.epochs})
        mlflow.set_tag("model_family", "elastic-net (SGD)")
        regressor = SGDRegressor(
            penalty="elasticnet", alpha=args.alpha, l1_ratio=args.l1_ratio, random_state=SEED
        )
        for epoch in range(args.epochs):
            regressor.partial_fit(x_train_s, y_train)
            mlflow.log_metrics(
                {
                    "train_rmse": rmse(regressor, x_train_s, y_train),
                    "val_rmse": rmse(regressor, x_val_s, y_val),
                },
                step=epoch,
            )
        model = make_pipeline(scaler, regressor)
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "coefficients.json"
            report.write_text(json.dumps({"coef": regressor.coef_.tolist()}, indent=2))
            mlflow.log_artifact(str(report))
        info = mlflow.sklearn.log_model(model, name="model")
        print(f"run {run.info.run_id}: val_rmse {rmse(regressor, x_val_s, y_val):.2f}")
        print(f"model {info.model_uri}")


if __name__ == "__main__":
    main()
