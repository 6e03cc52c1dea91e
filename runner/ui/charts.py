"""Metric line charts drawn as SVG on the server, downsampled to what a screen can show."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from markupsafe import Markup, escape

from runner.store import MetricPoint
from runner.store.summary import Bucket, MetricSummary

MAX_DRAWN = 1000  # points per series drawn exactly; longer ones are drawn from buckets
BUCKETS = 400  # buckets of a long series: two points each at most, about one per screen pixel
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
COLOURS = ("#1f6fb4", "#d2561e", "#2a8a3a", "#8a3ab0", "#b0303a", "#4b5a6a", "#a07800")
# Dashes as well as colours: the series stay apart when read without colour.
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 4", "10 4", "4 2 1 2")


class Series(NamedTuple):
    """One line: a label, its (x, y, hover text) points in x order, how many were logged."""

    label: str
    points: list[tuple[float, float, str]]
    total: int


def exact_series(label: str, history: Iterable[MetricPoint], x_axis: str) -> Series:
    """Every point of a short history; NaN and infinite values are left out (drawn as a join)."""
    points: list[tuple[float, float, str]] = []
    total = 0
    first_time: float | None = None
    for point in history:
        total += 1
        if point.value is None or not math.isfinite(point.value):
            continue
        x: float = point.step
        if x_axis == "time":
            first_time = point.timestamp if first_time is None else first_time
            x = (point.timestamp - first_time) / 1000.0
        points.append((x, point.value, f"{label} @ {_number(x)}: {_number(point.value)}"))
    points.sort(key=lambda p: p[0])
    return Series(label, points, total)


def bucket_series(label: str, summary: MetricSummary, x_axis: str) -> Series:
    """A long history drawn from its buckets: each bucket's lowest and highest value, in the
    order the line runs (down then up, or up then down, towards the next bucket)."""
    buckets = [b for b in summary.buckets if math.isfinite(b.low) and math.isfinite(b.high)]
    origin = buckets[0].first if buckets and x_axis == "time" else 0
    scale = 1000.0 if x_axis == "time" else 1.0
    unit = "ms" if x_axis == "time" else "steps"
    points: list[tuple[float, float, str]] = []
    for index, bucket in enumerate(buckets):
        first, last = (bucket.first - origin) / scale, (bucket.last - origin) / scale
        where = f"{label}, {unit} {bucket.first}-{bucket.last}" if x_axis != "time" else label
        note = (
            f"{where} ({_number(first)}-{_number(last)}): {bucket.points} points,"
            f" lowest {_number(bucket.low)}, highest {_number(bucket.high)}"
        )
        if bucket.low == bucket.high:
            points.append((first, bucket.low, note))
            continue
        rising = index + 1 < len(buckets) and _middle(buckets[index + 1]) > _middle(bucket)
        ends = (bucket.low, bucket.high) if rising else (bucket.high, bucket.low)
        points += [(first, ends[0], note), (last, ends[1], note)]
    return Series(label, points, summary.total)


def _middle(bucket: Bucket) -> float:
    return (bucket.low + bucket.high) / 2


class Frame(NamedTuple):
    """The data ranges a chart maps onto its drawing area."""

    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, value: float) -> float:
        span = self.x_high - self.x_low or 1.0
        return LEFT + (value - self.x_low) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = self.y_high - self.y_low or 1.0
        return HEIGHT - BOTTOM - (value - self.y_low) / span * (HEIGHT - TOP - BOTTOM)


def frame_of(series: Sequence[Series]) -> Frame | None:
    xs = [x for one in series for x, _, _ in one.points]
    ys = [y for one in series for _, y, _ in one.points]
    if not xs:
        return None
    return Frame(min(xs), max(xs), min(ys), max(ys))


def line_chart(series: Sequence[Series], x_axis: str, title: str) -> Markup:
    """An SVG chart of ``series`` overlaid; each drawn point has its exact value as a tooltip."""
    frame = frame_of(series)
    label = escape(title)
    head = (
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>"
    )
    if frame is None:
        empty = f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">no values</text>'
        return Markup(head + empty + "</svg>")
    parts = [head, _axes(frame, x_axis)]
    parts += [_line(one, frame, index) for index, one in enumerate(series)]
    parts.append("</svg>")
    return Markup("".join(parts))


def _line(one: Series, frame: Frame, index: int) -> str:
    colour, dash = COLOURS[index % len(COLOURS)], DASHES[index % len(DASHES)]
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y, _ in one.points)
    dashing = f' stroke-dasharray="{dash}"' if dash else ""
    dots = "".join(
        f'<circle class="pt" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.5"'
        f' fill="{colour}"><title>{escape(note)}</title></circle>'
        for x, y, note in one.points
    )
    return (
        f'<g class="series" data-label="{escape(one.label)}" data-points="{one.total}"'
        f' data-drawn="{len(one.points)}"><polyline fill="none" stroke="{colour}"'
        f' stroke-width="1.5"{dashing} points="{coords}"/>{dots}</g>'
    )


def _axes(frame: Frame, x_axis: str) -> str:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    unit = "time (s)" if x_axis == "time" else "step"
    lines = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#666"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#666"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" class="tick">'
        f"{_number(frame.y_high)}</text>",
        f'<text x="{LEFT - 6}" y="{bottom}" text-anchor="end" class="tick">'
        f"{_number(frame.y_low)}</text>",
        f'<text x="{LEFT}" y="{bottom + 16}" class="tick">{_number(frame.x_low)}</text>',
        f'<text x="{right}" y="{bottom + 16}" text-anchor="end" class="tick">'
        f"{_number(frame.x_high)}</text>",
        f'<text x="{(LEFT + right) // 2}" y="{HEIGHT - 4}" text-anchor="middle">{unit}</text>',
    ]
    return "".join(lines)


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def legend(series: Sequence[Series]) -> list[tuple[str, str, str, int]]:
    """(label, colour, dash, points logged) of each series, for the legend under a chart."""
    return [
        (one.label, COLOURS[i % len(COLOURS)], DASHES[i % len(DASHES)] or "solid", one.total)
        for i, one in enumerate(series)
    ]
