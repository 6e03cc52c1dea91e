"""ETL: generate a small regression data set (y = 3x + 2 + noise) and log it as an artifact."""

import argparse
import csv
import os
import random
import tempfile

import runner_tracking

parser = argparse.ArgumentParser()
parser.add_argument("--max-rows", type=int, required=True)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

rng = random.Random(args.seed)
folder = os.path.join(tempfile.mkdtemp(), "dataset")
os.makedirs(folder)
for split, share in (("train", 0.8), ("test", 0.2)):
    with open(os.path.join(folder, f"{split}.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y"])
        for _ in range(int(args.max_rows * share)):
            x = rng.uniform(-1, 1)
            writer.writerow([f"{x:.6f}", f"{3 * x + 2 + rng.gauss(0, 0.1):.6f}"])
runner_tracking.log_artifact(folder)  # the next steps read it as steps.etl.outputs.dataset
runner_tracking.log_output("rows", args.max_rows)
print(f"wrote {args.max_rows} rows to {folder}")
