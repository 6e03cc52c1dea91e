"""Command templates: placeholder checks at load time, and values rendered so none runs as code."""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping, Sequence

from runner.errors import ParameterError, SpecError
from runner.project.shellscan import HOLE, Kind, Slot, scan

NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INERT = re.compile(r"[A-Za-z0-9_.,+\-:/=@%]*")  # characters no shell context gives a meaning
_INERT_NAMES = "letters, digits and _ . , + - : / = @ %"
_RESERVED = frozenset(
    {"case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in"}
    | {"select", "then", "until", "while", "time"}
)
_HINT = (
    "runner quotes any value where its placeholder stands as a plain word; "
    "move the placeholder out of quotes, comments, here-documents and expansions"
)

_Piece = tuple[str, str | None, str | None, str | None]


def template_problems(template: str, declared: Sequence[str]) -> list[str]:
    """Everything wrong with the placeholders of a command template (checked at load time)."""
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"invalid command template: {exc}"]
    if HOLE in template:
        return ["the command contains a NUL character"]
    fields = [(f, spec, conv) for _, f, spec, conv in pieces if f is not None]
    slots = scan(_scan_text(pieces)).slots
    problems = [
        _field_problem(field, spec, conv, declared) or _slot_problem(field, slot)
        for (field, spec, conv), slot in zip(fields, slots, strict=True)
    ]
    return [problem for problem in problems if problem]


def ends_plain(template: str) -> bool:
    """Whether words appended to the rendered template would be plain words of its last command."""
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError:
        return False
    return HOLE not in template and scan(_scan_text(pieces)).ends_plain


def render_command(entry_name: str, template: str, values: Mapping[str, str]) -> str:
    """Substitute each ``{name}`` by its value; ``{{``/``}}`` become literal braces.

    A placeholder standing as a plain word gets the shell-quoted value. Anywhere else (inside
    quotes, a comment, a here-document, an expansion, after a backslash, or where the template is
    not understood) the value is inserted as it is, so it must be made of characters that mean
    nothing to the shell there, or be a number; otherwise :class:`ParameterError` says why.
    ``str.format`` is never called: it would evaluate ``{a.b}``/``{a[0]}`` on attacker data.
    """
    pieces = _parse(entry_name, template)
    fields = [field for _, field, _, _ in pieces if field is not None]
    slots = [
        _checked_slot(entry_name, field, slot, values)
        for field, slot in zip(fields, scan(_scan_text(pieces)).slots, strict=True)
    ]
    _refuse(
        [
            f"parameter '{field}' of entry point '{entry_name}' {problem}"
            for field, slot in zip(fields, slots, strict=True)
            if (problem := _value_problem(slot, values[field]))
        ]
    )
    command, heredocs = _assemble(pieces, slots, values)
    _refuse(_heredoc_problems(entry_name, command, heredocs))
    return command


_Heredocs = list[tuple[int, str, Slot]]  # (offset of the value, field, slot) in the command


def _assemble(
    pieces: Sequence[_Piece], slots: Sequence[Slot], values: Mapping[str, str]
) -> tuple[str, _Heredocs]:
    parts: list[str] = []
    heredocs: _Heredocs = []
    remaining = iter(slots)
    for literal, field, _, _ in pieces:
        parts.append(literal)
        if field is not None:
            slot = next(remaining)
            if slot.heredoc:
                heredocs.append((sum(map(len, parts)), field, slot))
            parts.append(_insert(slot, values[field]))
    return "".join(parts), heredocs


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ParameterError("\n".join(dict.fromkeys(problems)), hint=_HINT)


def _scan_text(pieces: Sequence[_Piece]) -> str:
    return "".join(literal + (HOLE if field is not None else "") for literal, field, _, _ in pieces)


def _parse(entry_name: str, template: str) -> list[_Piece]:
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SpecError(f"entry point '{entry_name}': invalid command template: {exc}") from exc
    if HOLE in template:
        raise SpecError(f"entry point '{entry_name}': the command contains a NUL character")
    return pieces


def _checked_slot(entry_name: str, field: str, slot: Slot, values: Mapping[str, str]) -> Slot:
    if field not in values:
        raise SpecError(
            f"entry point '{entry_name}': command uses undeclared placeholder {{{field}}}"
        )
    if slot.kind is Kind.FORBIDDEN:
        raise SpecError(f"entry point '{entry_name}': {_slot_problem(field, slot)}")
    return slot


def _field_problem(field: str, spec: str | None, conv: str | None, declared: Sequence[str]) -> str:
    shown = "{" + field + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
    if not field or field.isdigit():
        return f"positional placeholder {shown} is not allowed; use a parameter name"
    if "." in field or "[" in field:
        return f"placeholder {shown} uses attribute or index access, which is not allowed"
    if conv or spec:
        return f"placeholder {shown} uses a conversion or format spec, which is not allowed"
    if field not in declared:
        return f"placeholder {shown} is not a declared parameter of this entry point"
    return ""


def _slot_problem(field: str, slot: Slot) -> str:
    if slot.kind is Kind.FORBIDDEN:
        return f"placeholder {{{field}}} is {slot.where}, which is not allowed"
    return ""


def _value_problem(slot: Slot, value: str) -> str:
    """Why ``value`` cannot go into ``slot`` as it is, or ""."""
    used = f"is used {slot.where} in the command, so its value"
    if slot.kind is Kind.PLAIN:
        return ""
    if slot.kind is Kind.NUMBER:
        return "" if NUMBER.fullmatch(value) else f"{used} must be a number; got {value!r}"
    if not value and not slot.empty_ok:
        return f"{used} may not be empty"
    if not _INERT.fullmatch(value):
        return f"{used} may only contain {_INERT_NAMES}; got {value!r}"
    return ""


def _insert(slot: Slot, value: str) -> str:
    if slot.kind is not Kind.PLAIN:
        return value  # inert by now; quotes would change its meaning inside someone's quotes
    quoted = shlex.quote(value)
    bare = not quoted.startswith("'")
    # A bare keyword, assignment or brace list would be read as syntax, not as a word.
    return f"'{value}'" if bare and (slot.forced or value in _RESERVED) else quoted


def _heredoc_problems(entry_name: str, command: str, heredocs: _Heredocs) -> list[str]:
    """A value must not turn its line into the delimiter: the body would end early."""
    problems = []
    for offset, field, slot in heredocs:
        assert slot.heredoc is not None
        delimiter, strip, joins = slot.heredoc
        line = _logical_line(command, offset, joins)
        if (line.lstrip("\t") if strip else line) == delimiter:
            problems.append(
                f"parameter '{field}' of entry point '{entry_name}' would end a here-document "
                f"early: its line would be the delimiter {delimiter!r}"
            )
    return problems


def _logical_line(text: str, offset: int, joins: bool) -> str:
    """The line around ``offset``; with ``joins``, backslash-newlines continue it."""
    start = text.rfind("\n", 0, offset) + 1
    while joins and start and _continued(text[: start - 1]):
        start = text.rfind("\n", 0, start - 1) + 1
    end = text.find("\n", offset)
    while joins and end != -1 and _continued(text[:end]):
        end = text.find("\n", end + 1)
    line = text[start : len(text) if end == -1 else end]
    return line.replace("\\\n", "") if joins else line


def _continued(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1
