"""``steps.S.outputs.NAME``: the value the step logged with log_output, else its artifact NAME."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.errors import RunnerError
from runner.execution.artifacts import has_artifact
from runner.tracking import OUTPUT_TAG

if TYPE_CHECKING:
    from runner.store import Store


class MissingOutput(RunnerError):
    """A step referred to an output its upstream step did not produce."""

    code = "missing-output"


def output_value(store: Store, step: str, run_id: str, name: str) -> str:
    """The logged value, or ``runs:/<run-id>/NAME`` (a path parameter gets a local copy)."""
    tags = store.get_run(run_id).tags
    if OUTPUT_TAG + name in tags:
        return tags[OUTPUT_TAG + name]
    if has_artifact(store, run_id, name):
        return f"runs:/{run_id}/{name}"
    logged = sorted(k[len(OUTPUT_TAG) :] for k in tags if k.startswith(OUTPUT_TAG))
    raise MissingOutput(
        f"step '{step}' (run {run_id}) has no output '{name}': it logged no such value and "
        "has no artifact at that path" + (f" (it logged: {', '.join(logged)})" if logged else ""),
        hint="log it with runner_tracking.log_output(name, value) or "
        "runner_tracking.log_artifact(path)",
    )


def output_tags(store: Store, run_id: str) -> dict[str, str]:
    """The logged outputs of a run, as tags (copied onto a run that reuses it)."""
    return {k: v for k, v in store.get_run(run_id).tags.items() if k.startswith(OUTPUT_TAG)}
