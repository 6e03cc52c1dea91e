"""runner: run MLflow-format projects reproducibly and record every run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from runner.api import Run, run, workflow

__all__ = ["Run", "__version__", "run", "workflow"]


def __getattr__(name: str) -> Any:
    # the API pulls in the orchestrator; keep `import runner` (and the CLI start-up) light
    if name in ("run", "Run", "workflow"):
        from runner import api

        return getattr(api, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
