"""A toy training loop: one line (and one metric) per epoch, inside a container."""

import argparse
import os

try:  # mounted on PYTHONPATH by runner inside the container; absent when run on its own
    import runner_tracking as tracking
except ImportError:
    tracking = None

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--learning-rate", type=float, required=True)
args = parser.parse_args()

print(os.environ.get("GREETING", "hello"), flush=True)
loss = 1.0
for epoch in range(1, args.epochs + 1):
    loss *= 1 - args.learning_rate
    print(f"epoch {epoch}/{args.epochs} loss={loss:.4f}", flush=True)
    if tracking is not None:
        tracking.log_metric("loss", loss, step=epoch)
