"""What runner shows people and programs: terminal text that cannot forge lines or escapes, and
strict JSON (no NaN or Infinity, which JSON does not have)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# C0 controls but tab and newline, DEL and C1 (which some terminals also obey): ESC starts an
# ANSI sequence, CR rewrites the line, and so on
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str, *, one_line: bool = True) -> str:
    """``text`` with control characters shown as ``\\xNN`` (newlines too, when ``one_line``),
    so a name or value from a project or the store cannot forge lines or drive the terminal."""
    return (_CONTROL_OR_NEWLINE if one_line else _CONTROL).sub(_escape, text)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as the strings "NaN", "Infinity" and "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else NON_FINITE[value]
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def strict_json(value: Any, **options: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (see ``json_safe``)."""
    return json.dumps(json_safe(value), allow_nan=False, **options)
