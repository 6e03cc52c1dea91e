"""The contexts inside quotes, comments, expansions and here-documents, for the shell scanner."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

HOLE = "\0"  # stands for a placeholder in the scanned text (templates never contain NUL)
_META = frozenset(" \t\n;&|()<>")


class Kind(Enum):
    """What a value may be at a placeholder."""

    PLAIN = "plain"  # a word, or part of one: any value, shell-quoted
    TEXT = "text"  # inside quotes or other syntax: inert characters only, inserted raw
    NUMBER = "number"  # read again as arithmetic or code, or not understood: a number only
    FORBIDDEN = "forbidden"  # refused when the MLproject is loaded


@dataclass(frozen=True)
class Slot:
    """The context of one placeholder, in template order."""

    kind: Kind
    where: str = ""  # for messages: "inside single quotes", ...
    empty_ok: bool = False
    heredoc: tuple[str, bool, bool] | None = None  # (delimiter, strip tabs, unquoted body)
    forced: bool = False  # plain, but a bare value could be read as syntax: always quote it


class Cursor(Protocol):
    """What a context may do to the scan: see the text, record slots, open and close contexts."""

    text: str
    pending: list[Heredoc]  # here-documents whose body starts at the next newline

    def add(self, slot: Slot) -> None: ...

    def doubt(self, reason: str) -> None: ...

    def push(self, frame: Frame) -> None: ...

    def pop(self) -> None: ...

    def ahead(self, i: int, n: int = 1) -> str: ...

    def start_heredoc(self) -> None: ...

    def command(self, closer: str) -> Frame: ...


class Frame:
    """One context; ``step`` consumes the text at ``i`` and returns where to go on."""

    def step(self, sc: Cursor, i: int) -> int:
        raise NotImplementedError


SPECIAL_PARAMETERS = frozenset("$?#-!@*0123456789")


def dollar(sc: Cursor, i: int, *, commands: bool) -> int:
    """Open the expansion a ``$`` at ``i`` starts; ``i + 1`` if it starts none."""
    two = sc.ahead(i, 2)
    if two == "((":
        sc.push(Arith("))"))
        return i + 3
    opener = two[:1]
    if opener in ("{", "["):
        sc.push(Param() if opener == "{" else Arith("]"))
        return i + 2
    if opener == "(":
        if not commands:
            sc.doubt("$(...) inside an arithmetic or ${...} expansion")
        sc.push(sc.command(")"))
        return i + 2
    if opener and opener in SPECIAL_PARAMETERS:
        return i + 2  # $$, $?, $1...: the second character belongs to this one ($$' is no $')
    return i + 1


class Single(Frame):
    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            sc.add(Slot(Kind.TEXT, "inside single quotes", empty_ok=True))
        elif c == "'":
            sc.pop()
        return i + 1


class Ansi(Frame):
    """$'...': backslash escapes, no expansions."""

    escaped = False

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            where = "right after a backslash" if self.escaped else "inside $'...' quotes"
            sc.add(Slot(Kind.TEXT, where, empty_ok=not self.escaped))
            self.escaped = False
        elif self.escaped:
            self.escaped = False
        elif c == "\\":
            self.escaped = True
        elif c == "'":
            sc.pop()
        return i + 1


class Double(Frame):
    """Double quotes, "..." or $"...": expansions and backslash escapes."""

    escaped = False

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            sc.add(_double_slot(sc, i, self.escaped))
            self.escaped = False
        elif self.escaped:
            self.escaped = False
        elif c == "\\":
            self.escaped = True
        elif c == '"':
            sc.pop()
        elif c == "`":
            sc.push(sc.command("`"))
        elif c == "$":
            return dollar(sc, i, commands=True)
        return i + 1


def _double_slot(sc: Cursor, i: int, escaped: bool) -> Slot:
    if escaped:
        return Slot(Kind.TEXT, "right after a backslash")
    if sc.text[i - 1 : i] == "$":
        return Slot(Kind.TEXT, "right after $")
    return Slot(Kind.TEXT, "inside double quotes", empty_ok=True)


class Comment(Frame):
    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == "\n":
            sc.pop()
            return i  # the newline is also the end of the command line
        if c == HOLE:
            sc.add(Slot(Kind.TEXT, "inside a comment", empty_ok=True))
        return i + 1


class Arith(Frame):
    """$((...)), ((...)), $[...] and name[...]: the text is evaluated as arithmetic."""

    def __init__(self, closer: str, where: str = "inside an arithmetic expression") -> None:
        self.closer = closer
        self.where = where
        self.depth = 0

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            sc.add(Slot(Kind.NUMBER, self.where))
        elif c in "'\"\\`":
            sc.doubt(f"quotes or a backslash {self.where}")
        elif c == "$":
            return dollar(sc, i, commands=False)
        elif c in "([":
            self.depth += 1
        elif c in ")]":
            return self._close(sc, i)
        return i + 1

    def _close(self, sc: Cursor, i: int) -> int:
        closing = sc.text[i] + sc.ahead(i)
        if self.depth:
            self.depth -= 1
        elif closing[0] == self.closer or closing == self.closer:
            sc.pop()
            return i + len(self.closer)
        else:
            sc.doubt("$((...) that is not arithmetic")
        return i + 1


class Param(Frame):
    """${...}: its operators and words are evaluated, often as arithmetic."""

    depth = 0

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            sc.add(Slot(Kind.NUMBER, "inside ${...}"))
        elif c in "'\"\\`":
            sc.doubt("quotes or a backslash inside ${...}")
        elif c == "$":
            return dollar(sc, i, commands=False)
        elif c == "{":
            self.depth += 1
        elif c == "}":
            self.depth -= 1
            if self.depth < 0:
                sc.pop()
        return i + 1


class Delimiter(Frame):
    """The word after << or <<-: read literally, quoted parts make the body literal."""

    def __init__(self, strip: bool) -> None:
        self.strip = strip
        self.word = ""
        self.started = False
        self.quote = ""
        self.quoted = False
        self.escaped = False

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            sc.add(Slot(Kind.FORBIDDEN, "in a here-document delimiter"))
            sc.doubt("a placeholder in a here-document delimiter")
        elif c == "\n" and (self.escaped or self.quote):
            sc.doubt("a line break in a here-document delimiter")
        elif self.escaped or (self.quote and c != self.quote):
            self.escaped = False
            self.word += c
        elif self.quote:
            self.quote = ""
        elif c in _META:
            return self._end(sc, i)
        else:
            self._char(sc, c)
        return i + 1

    def _char(self, sc: Cursor, c: str) -> None:
        self.started = True
        if c in "\\'\"":
            self.quoted = True
            self.escaped, self.quote = c == "\\", "" if c == "\\" else c
        elif c in "$`":
            sc.doubt("$ or ` in a here-document delimiter")
        else:
            self.word += c

    def _end(self, sc: Cursor, i: int) -> int:
        if not self.started and sc.text[i] in " \t":
            return i + 1
        if self.started:
            sc.pending.append(Heredoc(self.word, self.strip, not self.quoted))
        else:
            sc.doubt("a here-document without a delimiter")
        sc.pop()
        return i  # the operator or blank after the word belongs to the command


class Heredoc(Frame):
    """A here-document body: line by line until a line equal to the delimiter."""

    def __init__(self, delimiter: str, strip: bool, expands: bool) -> None:
        self.delimiter = delimiter
        self.strip = strip
        self.expands = expands  # unquoted delimiter: $ ` and \ keep their meaning in the body
        self.line = ""  # the logical line so far (backslash-newlines joined when expanding)
        self.hole = False  # the line has a placeholder: it is not the delimiter as written
        self.escaped = False

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            info = (self.delimiter, self.strip, self.expands)
            where, empty_ok = self._hole_where(sc, i)
            sc.add(Slot(Kind.TEXT, where, empty_ok=empty_ok, heredoc=info))
            self.escaped, self.hole = False, True
        elif c == "\n":
            self._end_line(sc)
        else:
            self._char(sc, c, i)
        return i + 1

    def _hole_where(self, sc: Cursor, i: int) -> tuple[str, bool]:
        if self.escaped:
            return "right after a backslash", False
        if self.expands and sc.text[i - 1 : i] == "$":
            return "right after $", False
        return "inside a here-document", True

    def _char(self, sc: Cursor, c: str, i: int) -> None:
        expansion = c == "`" or (c == "$" and sc.ahead(i) in ("(", "{", "["))
        if self.expands and not self.escaped and expansion:
            sc.doubt("an expansion inside a here-document")
        self.escaped = self.expands and c == "\\" and not self.escaped
        self.line += c

    def _end_line(self, sc: Cursor) -> None:
        if self.escaped:  # backslash-newline: the logical line goes on
            self.escaped = False
            self.line = self.line[:-1]
            return
        line = self.line.lstrip("\t") if self.strip else self.line
        if line == self.delimiter and not self.hole:
            sc.pop()
            sc.start_heredoc()
        self.line, self.hole = "", False
