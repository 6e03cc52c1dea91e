"""Evaluate: the trained model's mean squared error on the held-out split."""

import argparse
import csv
import json
import os

import runner_tracking

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()

with open(args.model) as f:
    model = json.load(f)
with open(os.path.join(args.data, "test.csv")) as f:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
mse = sum((model["w"] * x + model["b"] - y) ** 2 for x, y in rows) / len(rows)
runner_tracking.log_metric("test_mse", mse)
runner_tracking.log_output("test_mse", f"{mse:.6f}")
print(f"test mse: {mse:.6f}")
