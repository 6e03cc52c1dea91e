"""Sweeps: ``-P name=v1,v2`` grids and ``uniform/loguniform/choice`` random search, as the
steps of a generated workflow under one parent run; the summary and the best run."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import UsageError
from runner.workflow.spec import StepSpec, WorkflowSpec

if TYPE_CHECKING:
    from runner.store import Store
    from runner.workflow.engine import Outcome

_DISTRIBUTION = re.compile(r"(uniform|loguniform|choice)\((.*)\)", re.DOTALL)
BEST_RUN_TAG = "runner.sweep.best_run"
BEST_VALUE_TAG = "runner.sweep.best_value"
METRIC_TAG = "runner.sweep.metric"


@dataclass(frozen=True)
class Axis:
    """One swept parameter: a list of values, or a distribution to sample."""

    name: str
    values: tuple[str, ...] = ()
    distribution: str | None = None  # uniform, loguniform
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: random.Random) -> str:
        if self.distribution is None:
            return rng.choice(self.values)
        if self.distribution == "uniform":
            return repr(rng.uniform(self.low, self.high))
        return repr(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


def parse_axis(name: str, text: str) -> Axis:
    """``a,b,c`` → values; ``uniform(0,1)``, ``loguniform(1e-4,1)``, ``choice(a,b)``."""
    match = _DISTRIBUTION.fullmatch(text.strip())
    if match is None:
        return Axis(name, tuple(text.split(",")))
    kind, inner = match[1], [part.strip() for part in match[2].split(",")]
    if kind == "choice":
        return Axis(name, tuple(inner))
    if len(inner) != 2:
        raise UsageError(f"-P {name}={text}: {kind}(low, high) takes two numbers")
    try:
        low, high = float(inner[0]), float(inner[1])
    except ValueError:
        raise UsageError(f"-P {name}={text}: {kind}(low, high) takes two numbers") from None
    if not low < high or (kind == "loguniform" and low <= 0):
        raise UsageError(
            f"-P {name}={text}: need low < high" + (", both > 0" if kind == "loguniform" else "")
        )
    return Axis(name, (), kind, low, high)


def combinations(
    axes: Sequence[Axis], mode: str, samples: int | None, seed: int | None
) -> list[dict[str, str]]:
    """Every grid point, or ``samples`` random draws (reproducible with ``seed``)."""
    if mode == "grid":
        ranged = [a.name for a in axes if a.distribution is not None]
        if ranged:
            raise UsageError(
                f"--sweep grid needs lists of values; {', '.join(ranged)} is a distribution",
                hint="use --sweep random --samples N for uniform(...) and loguniform(...)",
            )
        grid = itertools.product(*(a.values for a in axes))
        return [dict(zip([a.name for a in axes], point, strict=True)) for point in grid]
    if samples is None:
        raise UsageError("--sweep random needs --samples N")
    rng = random.Random(seed)
    return [{a.name: a.sample(rng) for a in axes} for _ in range(samples)]


def sweep_spec(
    uri: str,
    entry_point: str,
    fixed: Mapping[str, str],
    points: Sequence[dict[str, str]],
    *,
    version: str | None,
    cwd: Path,
) -> WorkflowSpec:
    """A workflow of independent steps, one per point, named after its values."""
    literal = [k for p in points for k, v in p.items() if "${{" in v]
    if literal:
        raise UsageError(f"-P {literal[0]}: '${{{{' has no meaning in a sweep's values")
    steps = {}
    for index, point in enumerate(points):
        name = f"{index:03d}:" + ",".join(f"{k}={v}" for k, v in point.items())
        steps[name] = StepSpec(
            name=name,
            project=uri,
            entry_point=entry_point,
            version=version,
            parameters={**fixed, **point},
        )
    return WorkflowSpec(name=f"sweep-{entry_point}", root=cwd, steps=steps, on_failure="continue")


def summary_rows(
    store: Store, outcome: Outcome, metric: str | None, maximize: bool
) -> list[dict[str, object]]:
    """One row per child, sorted by ``metric`` (best first; runs without it last)."""
    rows: list[dict[str, object]] = []
    for name, step in outcome.steps.items():
        source = step.source_run or step.run_id
        value = store.get_run(source).metrics.get(metric) if (metric and source) else None
        rows.append({"step": name, "run_id": step.run_id, "status": step.status, "metric": value})
    if metric:
        sign = -1.0 if maximize else 1.0
        rows.sort(key=lambda r: (r["metric"] is None, sign * float(r["metric"] or 0.0)))  # type: ignore[arg-type]
    return rows


def record_best(store: Store, parent: str, rows: Sequence[dict[str, object]], metric: str) -> None:
    best = next((r for r in rows if r["metric"] is not None), None)
    if best is None:
        return
    store.set_tags(
        parent,
        {
            BEST_RUN_TAG: str(best["run_id"]),
            BEST_VALUE_TAG: str(best["metric"]),
            METRIC_TAG: metric,
        },
    )
