"""Train: fit y = w*x + b by gradient descent on the ETL step's data; log the model."""

import argparse
import csv
import json
import os
import tempfile

import runner_tracking

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--alpha", type=float, default=0.01)
parser.add_argument("--epochs", type=int, default=50)
args = parser.parse_args()

with open(os.path.join(args.data, "train.csv")) as f:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
w = b = 0.0
for epoch in range(args.epochs):
    grad_w = sum((w * x + b - y) * x for x, y in rows) * 2 / len(rows)
    grad_b = sum(w * x + b - y for x, y in rows) * 2 / len(rows)
    w, b = w - args.alpha * 10 * grad_w, b - args.alpha * 10 * grad_b
    loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
    runner_tracking.log_metric("train_mse", loss, step=epoch)
path = os.path.join(tempfile.mkdtemp(), "model.json")
with open(path, "w") as f:
    json.dump({"w": w, "b": b}, f)
runner_tracking.log_artifact(path)  # steps.train.outputs.model.json
print(f"model: y = {w:.3f} x + {b:.3f}")
