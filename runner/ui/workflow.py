"""A workflow run as a DAG picture: its steps (from the dag.json it recorded) in layers by
their needs, each box with the status, duration and cache use of the step's latest run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from markupsafe import Markup, escape

from runner.errors import RunnerError
from runner.store import RunRecord
from runner.ui.table import duration_seconds, format_duration

DAG_FILE = "dag.json"  # runner.workflow.engine.DAG_FILE
STEP_TAG = "runner.step"
CACHED_FROM_TAG = "runner.cached_from"
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 58, 70, 22, 12
FILLS = {
    "finished": "#e4f5e8",
    "cached": "#e3f0fb",
    "running": "#fbf3d0",
    "scheduled": "#fbf3d0",
    "failed": "#fdecec",
    "killed": "#eceff2",
    "pending": "#ffffff",
}


class Step(NamedTuple):
    name: str
    needs: list[str]
    status: str  # a run status in lower case, "cached" or "pending"
    duration: str
    cached: bool
    run_id: str | None


class Graph(NamedTuple):
    steps: list[Step]
    svg: Markup


def workflow_graph(record: RunRecord, folder: Path, children: Sequence[RunRecord]) -> Graph:
    """The graph of a workflow run whose artifacts are in ``folder``."""
    try:
        dag = json.loads((folder / DAG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise RunnerError(
            f"run {record.run_id[:8]} is not a workflow run: it recorded no readable DAG"
        ) from exc
    order: list[str] = [str(name) for name in dag.get("order", [])]
    needs = {name: [str(n) for n in dag["steps"][name].get("needs", [])] for name in order}
    latest = {child.tags[STEP_TAG]: child for child in children if STEP_TAG in child.tags}
    steps = [_step(name, needs[name], latest.get(name)) for name in order]
    return Graph(steps, _svg(steps, _layers(order, needs)))


def _step(name: str, needs: list[str], run: RunRecord | None) -> Step:
    if run is None:
        return Step(name, needs, "pending", "", False, None)
    cached = CACHED_FROM_TAG in run.tags
    status = "cached" if cached else run.status.value.lower()
    return Step(name, needs, status, format_duration(duration_seconds(run)), cached, run.run_id)


def _layers(order: list[str], needs: dict[str, list[str]]) -> dict[str, int]:
    """Each step's column: one past the deepest step it needs (``order`` is topological)."""
    depth: dict[str, int] = {}
    for name in order:
        depth[name] = 1 + max((depth.get(need, 0) for need in needs[name]), default=-1)
    return depth


def _svg(steps: list[Step], depth: dict[str, int]) -> Markup:
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for step in steps:
        column = depth[step.name]
        place[step.name] = (column, rows.get(column, 0))
        rows[column] = rows.get(column, 0) + 1
    width = MARGIN * 2 + (max(rows, default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max(rows.values(), default=1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="dag-graph" role="img" aria-label="workflow steps and their needs"'
        f' viewBox="0 0 {width} {height}" width="{width}" xmlns="http://www.w3.org/2000/svg">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
    ]
    for step in steps:
        for need in step.needs:
            parts.append(_edge(place[need], place[step.name]))
    parts += [_box(step, place[step.name]) for step in steps]
    parts.append("</svg>")
    return Markup("".join(parts))


def _corner(at: tuple[int, int]) -> tuple[int, int]:
    return MARGIN + at[0] * (BOX_W + GAP_X), MARGIN + at[1] * (BOX_H + GAP_Y)


def _edge(source: tuple[int, int], target: tuple[int, int]) -> str:
    x1, y1 = _corner(source)
    x2, y2 = _corner(target)
    return (
        f'<line class="edge" x1="{x1 + BOX_W}" y1="{y1 + BOX_H // 2}" x2="{x2}"'
        f' y2="{y2 + BOX_H // 2}" stroke="#666" marker-end="url(#arrow)"/>'
    )


def _box(step: Step, at: tuple[int, int]) -> str:
    x, y = _corner(at)
    name, fill = escape(step.name), FILLS.get(step.status, "#fff")
    words = [step.status, step.duration]
    body = (
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}"'
        f' stroke="#555"/><text x="{x + 8}" y="{y + 20}" font-weight="700">{name}</text>'
        f'<text x="{x + 8}" y="{y + 42}">{escape(" · ".join(w for w in words if w))}</text>'
    )
    label = _attr(step)
    if step.run_id is None:
        return f'<g class="step" data-step="{name}" {label}>{body}</g>'
    return f'<a href="/ui/runs/{step.run_id}" class="step" data-step="{name}" {label}>{body}</a>'


def _attr(step: Step) -> str:
    text = f"{step.name}: {step.status}" + (f", {step.duration}" if step.duration else "")
    return f'data-status="{escape(step.status)}" aria-label="{escape(text)}"'
