"""What runner shows people and programs: terminal text that cannot forge lines or escapes, and
strict JSON (no NaN or Infinity, which JSON does not have)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

# C0 controls but tab and newline, DEL and C1 (which some terminals also obey): ESC starts an
# ANSI sequence, CR rewrites the line, and so on
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
MASK = b"***"


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


class SecretMask:
    """Replaces secret values in output streams by ``***``, also when a value is split across
    chunks: the end of a chunk that could begin a secret waits for the next chunk."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        self._held: dict[str, bytes] = {}

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def feed(self, stream: str, data: bytes) -> bytes:
        """What of ``stream`` can be shown now, masked."""
        text = self._held.pop(stream, b"") + data
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        keep = self._partial_tail(text)
        if keep:
            self._held[stream] = text[-keep:]
            text = text[:-keep]
        return text

    def flush(self, stream: str) -> bytes:
        """The rest of ``stream`` once it has ended (a held tail was no secret after all)."""
        return self._held.pop(stream, b"")

    def _partial_tail(self, text: bytes) -> int:
        longest = min(len(text), max(map(len, self._secrets)) - 1)
        for size in range(longest, 0, -1):
            tail = text[-size:]
            if any(secret.startswith(tail) for secret in self._secrets):
                return size
        return 0
