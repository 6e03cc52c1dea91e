"""A metric's history in buckets of steps (or times): each bucket's extremes, counted in SQL, so
a chart of 100,000 points reads a few hundred rows instead of every point."""

from __future__ import annotations

from typing import Literal, NamedTuple

from runner.store.database import Session

Axis = Literal["step", "timestamp"]
# Both written into the SQL: only these two column names, never a caller's text.
_AXES: dict[str, str] = {"step": "step", "timestamp": "timestamp"}
SPAN = "SELECT MIN({axis}), MAX({axis}), COUNT(*) FROM metrics WHERE run_id = ? AND key = ?"
# The bucket of a point is its place between the lowest and highest axis value; the division is
# done in floating point so that no step (up to 2**63) can overflow. Rounding differs between
# SQLite (truncates) and PostgreSQL (rounds): a point may land one bucket over, which shifts a
# boundary and never loses a point or an extreme.
BUCKETS = (
    "SELECT CAST(({axis} - ?) * ? AS INTEGER) AS bucket, MIN({axis}), MAX({axis}),"
    " MIN(value), MAX(value), COUNT(*) FROM metrics"
    " WHERE run_id = ? AND key = ? AND value IS NOT NULL GROUP BY bucket ORDER BY bucket"
)


class Bucket(NamedTuple):
    """Points of one slice of the axis: its first and last axis value, lowest and highest value."""

    first: int
    last: int
    low: float
    high: float
    points: int


class MetricSummary(NamedTuple):
    """How many points a key has (NaN included), and its buckets (NaN left out), in axis order."""

    total: int
    buckets: list[Bucket]


def span(session: Session, run_id: str, key: str, axis: Axis) -> tuple[int, int, int]:
    """(lowest, highest, count) of the axis over a key's points; (0, 0, 0) when it has none."""
    row = session.one(SPAN.format(axis=_AXES[axis]), (run_id, key))
    if row is None or not row[2]:
        return 0, 0, 0
    return int(row[0]), int(row[1]), int(row[2])


def summarise(session: Session, run_id: str, key: str, axis: Axis, count: int) -> MetricSummary:
    """At most about ``count`` buckets of a key's points, evenly spaced along ``axis``."""
    low, high, total = span(session, run_id, key, axis)
    if not total:
        return MetricSummary(0, [])
    scale = count / (high - low + 1)
    found = session.rows(BUCKETS.format(axis=_AXES[axis]), (low, scale, run_id, key))
    buckets = [
        Bucket(int(first), int(last), float(lo), float(hi), int(n))
        for _bucket, first, last, lo, hi, n in found
    ]
    return MetricSummary(total, buckets)
