"""Durations as workflow files write them: 90, 90s, 10m, 2h (and 1.5h)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|m|h)?")
_SECONDS = {None: 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(value: object) -> float:
    """Seconds; ValueError with the reason for anything else (bools, negatives, units)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, 10m or 2h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).strip())
        if match is None:
            raise ValueError(f"expected a duration such as 90s, 10m or 2h, got {value!r}")
        seconds = float(match[1]) * _SECONDS[match[2]]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be zero or more seconds, got {value!r}")
    return seconds


def shown(seconds: float) -> str:
    """A duration as a user reads it: 1.2s, 10m, 2h."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:.3g}s"
