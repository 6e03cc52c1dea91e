"""Elastic-net linear regression trained with numpy on generated data (fixed seed)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from tabulate import tabulate

N_SAMPLES, N_FEATURES, SEED = 400, 8, 42


def make_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = X @ w + noise, where only half of the true weights are non-zero."""
    x = rng.normal(size=(N_SAMPLES, N_FEATURES))
    true_w = np.where(np.arange(N_FEATURES) % 2 == 0, rng.uniform(1, 3, N_FEATURES), 0.0)
    y = x @ true_w + 1.5 + rng.normal(scale=0.5, size=N_SAMPLES)
    return x, y, true_w


def fit_elastic_net(
    x: np.ndarray, y: np.ndarray, alpha: float, l1_ratio: float, iterations: int = 200
) -> tuple[np.ndarray, float]:
    """Coordinate descent on (1/2n)|y - Xw - b|^2 + alpha*(l1|w|_1 + (1-l1)/2 |w|^2)."""
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    n = len(y)
    w = np.zeros(x.shape[1])
    col_sq = (xc**2).sum(axis=0) / n
    for _ in range(iterations):
        for j in range(x.shape[1]):
            residual = yc - xc @ w + xc[:, j] * w[j]
            rho = xc[:, j] @ residual / n
            shrunk = np.sign(rho) * max(abs(rho) - alpha * l1_ratio, 0.0)
            w[j] = shrunk / (col_sq[j] + alpha * (1 - l1_ratio))
    return w, y_mean - x_mean @ w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--l1-ratio", type=float, default=0.1)
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    x, y, true_w = make_data(rng)
    split = int(0.8 * N_SAMPLES)
    w, b = fit_elastic_net(x[:split], y[:split], args.alpha, args.l1_ratio)
    pred = x[split:] @ w + b
    rmse = float(np.sqrt(np.mean((pred - y[split:]) ** 2)))
    r2 = 1 - float(np.sum((pred - y[split:]) ** 2) / np.sum((y[split:] - y[split:].mean()) ** 2))

    rows = [(f"w{j}", f"{true_w[j]:.3f}", f"{w[j]:.3f}") for j in range(N_FEATURES)]
    print(tabulate(rows, headers=("weight", "true", "fitted")))
    print(f"alpha={args.alpha} l1_ratio={args.l1_ratio} rmse={rmse:.4f} r2={r2:.4f}")

    # --- tracking: log the metrics into this run (a no-op outside runner) ---
    tracking = _tracking()
    if tracking is not None:
        tracking.log_metric("rmse", rmse)
        tracking.log_metric("r2", r2)


def _tracking() -> Any:
    """runner puts `runner_tracking` on PYTHONPATH inside project envs; fall back to the package."""
    try:
        import runner_tracking

        return runner_tracking
    except ImportError:
        try:
            from runner import tracking

            return tracking
        except ImportError:
            return None


if __name__ == "__main__":
    main()
