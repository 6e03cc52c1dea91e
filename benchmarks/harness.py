"""Benchmark harness: warm-up, alternating runner/MLflow rounds, statistics, table and JSON."""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_JSON = RESULTS_DIR / "latest.json"


class NotAvailable(Exception):
    """Raised by a probe or a preparation step: this side cannot be measured, and why."""


@dataclass(frozen=True)
class Measurement:
    """One timed sample: seconds plus optional extra numbers (e.g. ``peak_rss_mb``) and a note."""

    seconds: float
    extra: dict[str, float] = field(default_factory=dict)
    note: str | None = None


Sample = float | Measurement
T = TypeVar("T")


@dataclass
class Context:
    """What a case's callables get: a private scratch dir, the mode, the round, shared state."""

    scratch: Path
    quick: bool
    round: int = 0  # negative during warm-up
    state: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[Context], Sample]
Probe = Callable[[], str | None]


@dataclass(frozen=True)
class Case:
    """A benchmark: the runner side, an optional MLflow side, and untimed preparation steps."""

    name: str
    description: str
    available: Probe  # None when the runner feature exists, else "not available: ..."
    run_runner: Runner
    run_mlflow: Runner | None = None
    mlflow_available: Probe | None = None
    prepare_runner: Callable[[Context], None] | None = None  # untimed, once, before warm-up
    prepare_mlflow: Callable[[Context], None] | None = None
    quick: bool = False  # part of ``--quick``
    params: Callable[[bool], str] | None = None  # e.g. "N=100000", given the quick flag


@dataclass
class Side:
    """The samples and status of one tool on one case."""

    status: str = "ok"  # ok | not available | skipped | error
    reason: str | None = None
    samples: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        m = sample if isinstance(sample, Measurement) else Measurement(float(sample))
        self.samples.append(m.seconds)
        for key, value in m.extra.items():
            self.extra.setdefault(key, []).append(value)
        if m.note and m.note not in self.notes:
            self.notes.append(m.note)

    def stop(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.ok else None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason}
        if self.ok:
            out.update(median=self.median, min=min(self.samples), max=max(self.samples))
        out.update(samples=self.samples, notes=self.notes)
        out["extra"] = {k: statistics.median(v) for k, v in self.extra.items()}
        return out


@dataclass
class CaseResult:
    """Both sides of one case."""

    name: str
    description: str
    params: str
    runner: Side
    mlflow: Side | None

    @property
    def failed(self) -> bool:
        """True when either side raised an error (not-available and skipped are not failures)."""
        return "error" in (self.runner.status, self.mlflow.status if self.mlflow else "")

    @property
    def ratio(self) -> float | None:
        """MLflow median / runner median: above 1 means runner is faster."""
        if self.mlflow is None or not (self.runner.ok and self.mlflow.ok):
            return None
        runner, mlflow = self.runner.median, self.mlflow.median
        assert runner is not None and mlflow is not None
        return mlflow / runner if runner > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": self.params,
            "runner": self.runner.to_json(),
            "mlflow": self.mlflow.to_json() if self.mlflow else None,
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class Plan:
    """How many rounds to run and whether MLflow takes part."""

    rounds: int
    warmup: int
    with_mlflow: bool
    quick: bool


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, NotAvailable):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:600]


def _guard(side: Side, step: Callable[[], T]) -> T | None:
    """Run one step for a side; a failure stops that side (never the whole benchmark)."""
    if side.status != "ok":
        return None
    try:
        return step()
    except NotAvailable as exc:
        side.stop("not available", _error_text(exc))
    except Exception as exc:
        side.stop("error", _error_text(exc))
    return None


def _probe(side: Side, probe: Probe | None) -> None:
    reason = probe() if probe else None
    if reason:
        side.stop("not available", reason)


def _mlflow_side(case: Case, plan: Plan) -> Side | None:
    if case.run_mlflow is None:
        return None
    side = Side()
    if not plan.with_mlflow:
        side.stop("skipped", "MLflow not measured (--no-mlflow / --quick)")
    else:
        _probe(side, case.mlflow_available)
    return side


def _prepare(side: Side, step: Callable[[Context], None] | None, ctx: Context) -> None:
    if step is not None:
        _guard(side, partial(step, ctx))


def _one_round(case: Case, ctx: Context, runner: Side, mlflow: Side | None, counted: bool) -> None:
    sides: list[tuple[Side, Runner]] = [(runner, case.run_runner)]
    if mlflow is not None and case.run_mlflow is not None:
        sides.append((mlflow, case.run_mlflow))
    for side, fn in sides:
        sample = _guard(side, partial(fn, ctx))
        if counted and sample is not None:
            side.add(sample)


def run_case(case: Case, plan: Plan, log: Callable[[str], None] = print) -> CaseResult:
    """Probe, prepare, warm up, then alternate runner and MLflow for the counted rounds."""
    runner, mlflow = Side(), _mlflow_side(case, plan)
    _probe(runner, case.available)
    params = case.params(plan.quick) if case.params else ""
    with tempfile.TemporaryDirectory(prefix=f"bench-{case.name}-") as tmp:
        ctx = Context(scratch=Path(tmp), quick=plan.quick)
        _prepare(runner, case.prepare_runner, ctx)
        if mlflow is not None:
            _prepare(mlflow, case.prepare_mlflow, ctx)
        live = [s for s in (runner, mlflow) if s is not None and s.status == "ok"]
        for index in range(plan.warmup + plan.rounds if live else 0):
            ctx.round = index - plan.warmup
            log(f"[benchmarks] {case.name}: round {ctx.round}")
            _one_round(case, ctx, runner, mlflow, counted=ctx.round >= 0)
    return CaseResult(case.name, case.description, params, runner, mlflow)


# ---------------------------------------------------------------- table


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _range(side: Side | None) -> str:
    if side is None or not side.ok:
        return "-"
    return f"{min(side.samples):.3f} / {max(side.samples):.3f}"


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio >= 1:
        return f"{ratio:.1f}x faster"
    return f"{1 / ratio:.1f}x slower"


def _side_notes(label: str, side: Side | None) -> list[str]:
    if side is None:
        return [f"{label}: no MLflow equivalent"] if label == "mlflow" else []
    notes: list[str] = []
    if side.status != "ok":
        reason = side.reason or ""
        same = reason.startswith(f"{side.status}:")
        notes.append(f"{label} {reason}" if same else f"{label} {side.status}: {reason}")
    for key, values in side.extra.items():
        notes.append(f"{label} {key} {statistics.median(values):.1f}")
    notes.extend(f"{label}: {note}" for note in side.notes)
    return notes


def notes_text(result: CaseResult) -> str:
    """The notes column: params, extra numbers, and every not-available or error reason."""
    notes = [result.params] if result.params else []
    notes += _side_notes("runner", result.runner) + _side_notes("mlflow", result.mlflow)
    return "; ".join(n.replace("|", "/").replace("\n", " ") for n in notes)


HEADER = (
    "case",
    "runner median (s)",
    "MLflow median (s)",
    "ratio (MLflow/runner)",
    "runner min/max",
    "mlflow min/max",
    "notes",
)


def table_rows(results: list[CaseResult]) -> list[tuple[str, ...]]:
    return [
        (
            r.name,
            _secs(r.runner.median),
            _secs(r.mlflow.median if r.mlflow else None),
            _ratio_text(r.ratio),
            _range(r.runner),
            _range(r.mlflow),
            notes_text(r),
        )
        for r in results
    ]


def markdown_table(results: list[CaseResult]) -> str:
    """The results as a Markdown table (printed, and pasted into benchmarks/README.md)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines)


# ---------------------------------------------------------------- JSON


def write_json(results: list[CaseResult], meta: dict[str, Any], path: Path = DEFAULT_JSON) -> None:
    """Write ``meta`` plus every case to ``path`` atomically (``<path>.tmp`` then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "cases": [r.to_json() for r in results]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
