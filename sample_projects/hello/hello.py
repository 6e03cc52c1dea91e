"""Greets someone; the smallest project runner can run (system environment, two parameters)."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--excitement", type=float, required=True)
args = parser.parse_args()

marks = "!" * max(1, round(args.excitement))
print(f"Hello, {args.name}{marks}")
print(f"(run {os.environ.get('RUNNER_RUN_ID', 'outside runner')})")
