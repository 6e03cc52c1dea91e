"""Greets someone; the smallest project runner can run (system environment, two parameters)."""

import argparse
import os

try:  # on PYTHONPATH inside every runner run; absent when the script runs on its own
    import runner_tracking as tracking
except ImportError:
    tracking = None

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--excitement", type=float, required=True)
args = parser.parse_args()

marks = "!" * max(1, round(args.excitement))
print(f"Hello, {args.name}{marks}")
print(f"(run {os.environ.get('RUNNER_RUN_ID', 'outside runner')})")
if tracking is not None:
    tracking.log_metric("greeting_length", len(args.name) + len(marks))
