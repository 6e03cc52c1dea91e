"""Which conda-compatible executable is configured (``RUNNER_CONDA_EXE``), if any: no imports."""

from __future__ import annotations

import os
import shutil

from runner.errors import EnvBuildError

ENV_VAR = "RUNNER_CONDA_EXE"
AUTO_NAMES = ("conda", "mamba", "micromamba")


def configured_exe() -> str | None:
    """The executable to use, or None for rattler; a configured one that is missing is an error."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    if value == "auto":
        found = next(filter(None, map(shutil.which, AUTO_NAMES)), None)
        if found is None:
            raise EnvBuildError(
                f"{ENV_VAR}=auto: none of {', '.join(AUTO_NAMES)} is on PATH",
                hint=f"unset {ENV_VAR} to solve and install with rattler (no conda needed)",
            )
        return found
    found = shutil.which(value)
    if found is None:
        raise EnvBuildError(
            f"{ENV_VAR}: {value!r} is not an executable",
            hint=f"unset {ENV_VAR} to solve and install with rattler (no conda needed)",
        )
    return found
