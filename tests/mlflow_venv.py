"""A virtualenv of the tests' own with MLflow's real client from the package index.

``mlflow-skinny`` is MLflow's client without its server; ``mlflow.sklearn.log_model`` needs
scikit-learn, pandas and skops on top of it (the full ``mlflow`` package brings its server).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PACKAGES = ("mlflow-skinny>=3.0", "scikit-learn>=1.4", "pandas>=2.0", "skops>=0.10")


def create_mlflow_venv(target: Path, uv_cache: Path) -> Path:
    """Create the venv at ``target`` with uv (the machine's index settings); its python."""
    from runner.envs.python.uvcmd import uv_bin, uv_env

    env = {**uv_env(), "UV_CACHE_DIR": str(uv_cache)}
    _uv([uv_bin(), "venv", "--python", sys.executable, str(target)], env)
    python = target / "bin" / "python"
    _uv([uv_bin(), "pip", "install", "--python", str(python), *PACKAGES], env)
    return python


def _uv(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{result.stderr[-2000:]}")


def uv_cache_env(uv_cache: Path) -> dict[str, str]:
    """What a `runner run` subprocess needs to build python_env envs from the same cache."""
    return {"UV_CACHE_DIR": str(uv_cache), "PATH": os.environ.get("PATH", "")}
