"""The MLflow virtualenv the benchmarks compare against, created once under benchmarks/.work/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

WORK_DIR = Path(__file__).resolve().parent / ".work"
VENV_DIR = WORK_DIR / "mlflow-venv"
PYTHON_VERSION = "3.11"


def venv_bin(name: str) -> Path:
    """Path of an executable inside the MLflow venv (``python``, ``mlflow``)."""
    return VENV_DIR / "bin" / name


def is_installed() -> bool:
    """True when the venv exists and has a working ``mlflow`` console script."""
    return venv_bin("mlflow").is_file() and venv_bin("python").is_file()


def uv_bin() -> str:
    """The ``uv`` binary shipped by the ``uv`` Python package (a runner dependency)."""
    from uv import find_uv_bin

    return str(find_uv_bin())


def ensure_mlflow(verbose: bool = True) -> Path:
    """Create the venv with ``uv venv`` + ``uv pip install mlflow`` unless it exists; return it."""
    if is_installed():
        return VENV_DIR
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    uv = uv_bin()
    out = None if verbose else subprocess.DEVNULL
    if verbose:
        print(f"[benchmarks] installing MLflow into {VENV_DIR} (first use only) ...", flush=True)
    subprocess.run(
        [uv, "venv", "--python", PYTHON_VERSION, str(VENV_DIR)], check=True, stdout=out, stderr=out
    )
    env = {**os.environ, "VIRTUAL_ENV": str(VENV_DIR)}
    subprocess.run(
        [uv, "pip", "install", "--compile-bytecode", "--python", str(venv_bin("python")), "mlflow"],
        check=True,
        stdout=out,
        stderr=out,
        env=env,
    )
    return VENV_DIR


def mlflow_version() -> str | None:
    """The installed MLflow version (from its dist-info), or None when the venv is absent."""
    if not is_installed():
        return None
    for info in sorted(VENV_DIR.glob("lib/python*/site-packages/mlflow-*.dist-info")):
        return info.name.removeprefix("mlflow-").removesuffix(".dist-info")
    return None
