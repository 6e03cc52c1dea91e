"""What to tell a user about a failed uv step: uv's headline error, the package, the last lines.

uv puts the useful part first ("Failed to build `scikit-learn==1.0.2`", then its causes) and a
compiler's or build backend's traceback after it; the tail alone shows only the traceback.
"""

from __future__ import annotations

import re

TAIL_LINES = 10
MAX_CAUSES = 3
# "error: ..." without a terminal, a multiplication sign with one; causes are indented under it
_HEADLINE = re.compile("^\\s*(?:error:|\u00d7)\\s*(?P<text>\\S.*)$")
_CAUSE = re.compile(r"^\s*(?:cause:|Caused by:|├─▶|╰─▶)\s*(?P<text>\S.*)$")
_PACKAGE_PATTERNS = (
    re.compile(r"(?:build|download|fetch|install|prepare|extract|read|resolve)\w* `(?P<p>[^`]+)`"),
    re.compile(r"no versions? of (?P<p>[^\s,]+)"),
    re.compile(r"Because (?P<p>[^\s,]+) (?:was not found|has no)"),
)


def failure_summary(log: str) -> str:
    """Headline, failed package and causes of the uv error in ``log``, then its last lines.

    Falls back to the last lines alone when ``log`` holds no headline uv writes.
    """
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("$ ")]  # the command runner logged
    at = next((i for i, line in enumerate(lines) if _HEADLINE.match(line)), None)
    if at is None:
        return "\n".join(lines[-TAIL_LINES:])
    causes = _causes(lines, at)
    shown = [_text(_HEADLINE, lines[at])]
    package = failed_package([shown[0], *causes])
    if package:
        shown.append(f"  failed package: {package}")
    shown += [f"  because: {cause}" for cause in causes]
    rest = lines[at + 1 + len(causes) :][-TAIL_LINES:]
    if rest:
        shown += ["  last lines of the log:", *(f"    {line}" for line in _dedented(rest))]
    return "\n".join(shown)


def failed_package(texts: list[str]) -> str | None:
    """The package a headline or cause names as the one that failed, if any."""
    for text in texts:
        for pattern in _PACKAGE_PATTERNS:
            found = pattern.search(text)
            if found:
                return found.group("p")
    return None


def _causes(lines: list[str], at: int) -> list[str]:
    causes = []
    for line in lines[at + 1 : at + 1 + MAX_CAUSES]:
        if not _CAUSE.match(line):
            break
        causes.append(_text(_CAUSE, line))
    return causes


def _text(pattern: re.Pattern[str], line: str) -> str:
    found = pattern.match(line)
    return found.group("text").rstrip(":") if found else line.strip()


def _dedented(lines: list[str]) -> list[str]:
    """The lines without the indentation uv adds to a backend's output (kept within it)."""
    indents = [len(line) - len(line.lstrip()) for line in lines]
    base = min((indent for indent in indents if indent), default=0)
    return [line[min(base, indent) :] for line, indent in zip(lines, indents, strict=True)]
