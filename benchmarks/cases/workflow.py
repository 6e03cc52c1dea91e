"""workflow-200-steps: a 200-step workflow, cold and fully cached (runner only)."""

from __future__ import annotations

from benchmarks.cases import _common as c
from benchmarks.harness import Case, Context, Measurement, NotAvailable


def available() -> str | None:
    if not c.has_module("runner.workflow"):
        return "not available: runner/workflow.py does not exist yet"
    return (
        "not available: runner.workflow exists but this case is not wired to it yet "
        "(benchmarks/cases/workflow.py)"
    )


def run_runner(ctx: Context) -> Measurement:
    raise NotAvailable(available() or "not available")


CASES = [
    Case(
        name=f"workflow-200-steps-{temp}",
        description=f"a 200-step workflow, {temp} (runner only; peak RSS reported)",
        available=available,
        run_runner=run_runner,
    )
    for temp in ("cold", "cached")
]
