"""A conservative reading of bash's grammar: the context each placeholder of a command sits in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.project.shellframes import (
    HOLE,
    Ansi,
    Arith,
    Comment,
    Cursor,
    Delimiter,
    Double,
    Frame,
    Heredoc,
    Kind,
    Single,
    Slot,
    dollar,
)

__all__ = ["HOLE", "Kind", "Scan", "Slot", "scan"]

QUOTED = "\1"  # stands for a quoted or expanded part of a word: never a keyword or a name
_NAMEISH = re.compile(r"[A-Za-z_\0][A-Za-z0-9_\0]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_REDIRECT_PREFIX = re.compile(r"[0-9]+|\{[A-Za-z_][A-Za-z0-9_]*\}")  # 2>x, {fd}>x
_DELIMITER_BEFORE = re.compile(r"<<-?[ \t]*['\"\\]*$")
# Words after which the next word is still a command name (so `if eval {x}` is still eval).
_PREFIXES = frozenset(
    {"!", "{", "}", "if", "then", "elif", "else", "fi", "do", "done", "while", "until", "time"}
    | {"builtin", "command", "-p", "--"}
)
_CODE_COMMANDS = frozenset({"eval", "let"})  # builtins that read their arguments as code
_IN_AFTER = frozenset({"for", "select", "case"})  # `for x in`: the word after next is a keyword


@dataclass(frozen=True)
class Scan:
    """Every placeholder's slot, and whether text appended at the end lands in a plain position."""

    slots: tuple[Slot, ...]
    ends_plain: bool


def scan(text: str) -> Scan:
    """Classify each HOLE in ``text`` (the template with its literal braces already resolved)."""
    scanner = _Scanner(text)
    scanner.run()
    return Scan(tuple(scanner.slots), scanner.ends_plain())


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.stack: list[Frame] = [_Command()]
        self.pending: list[Heredoc] = []  # here-documents whose body starts at the next newline
        self.slots: list[Slot] = []
        self.unsure = ""  # why the rest cannot be analysed; every later placeholder is a NUMBER

    def run(self) -> None:
        i = 0
        while i < len(self.text):
            i = self._unsure_step(i) if self.unsure else self.stack[-1].step(self, i)

    def _unsure_step(self, i: int) -> int:
        if self.text[i] == HOLE:
            if _DELIMITER_BEFORE.search(self.text[:i]):
                self.slots.append(Slot(Kind.FORBIDDEN, "in a here-document delimiter"))
            else:
                where = f"after {self.unsure} (which runner does not analyse)"
                self.slots.append(Slot(Kind.NUMBER, where))
        return i + 1

    def add(self, slot: Slot) -> None:
        """Record a slot; inside [[ ]], eval or let anything is evaluated again: numbers only."""
        frames = (f for f in self.stack if isinstance(f, _Command) and f.evaluated)
        evaluated = next((f.evaluated for f in frames), "")
        if evaluated and slot.kind in (Kind.PLAIN, Kind.TEXT):
            slot = Slot(Kind.NUMBER, evaluated)
        self.slots.append(slot)

    def doubt(self, reason: str) -> None:
        self.unsure = self.unsure or reason

    def push(self, frame: Frame) -> None:
        self.stack.append(frame)

    def pop(self) -> None:
        self.stack.pop()

    def ahead(self, i: int, n: int = 1) -> str:
        return self.text[i + 1 : i + 1 + n]

    def start_heredoc(self) -> None:
        if self.pending:
            self.push(self.pending.pop(0))

    def command(self, closer: str) -> Frame:
        return _Command(closer)

    def ends_plain(self) -> bool:
        top = self.stack[0]
        if isinstance(top, _Command):
            top.end_word(self)
        return not self.unsure and len(self.stack) == 1 and isinstance(top, _Command) and top.calm


class _Command(Frame):
    """Words and operators: the top level (no closer), or inside $( <( >( (")") or backticks."""

    def __init__(self, closer: str = "") -> None:
        self.closer = closer
        self.depth = 0  # open subshell parentheses inside $(...)
        self.escaped = False
        self.word = ""  # the current word; HOLE and QUOTED stand for non-literal parts
        self.word_cmd = False  # the current word is a command name or a keyword position
        self.brace = False  # the current word has an unquoted "{": brace expansion
        self.cmd_pos = True  # the next word is a command name
        self.keyword_in = 0  # 1: the next word is where `in` is a keyword (for x in ...)
        self.code = ""  # "eval" or "let" while in that command's arguments
        self.test = False  # inside [[ ... ]]
        self.redirect = False  # the next word is a redirection target

    @property
    def calm(self) -> bool:
        """Nothing pending: text appended here would be new plain words of the last command."""
        return not (self.escaped or self.evaluated)

    @property
    def evaluated(self) -> str:
        """Why words here are evaluated again (as arithmetic or code), or ""."""
        if self.test:
            return "inside [[ ... ]]"
        return f"in the arguments of {self.code}" if self.code else ""

    def step(self, sc: Cursor, i: int) -> int:
        c = sc.text[i]
        if c == HOLE:
            sc.add(self._slot(sc, i))
            self.add(HOLE)
            return i + 1
        if self.escaped:
            self.escaped = False
            if c != "\n":  # a backslash-newline joins lines and adds nothing
                self.add(QUOTED)
            return i + 1
        if self.closer == "`" and _backquote_doubt(sc, i):
            return i + 1
        return self._char(sc, c, i)

    def _char(self, sc: Cursor, c: str, i: int) -> int:
        if c in _HANDLERS:
            return _HANDLERS[c](self, sc, i)
        if c == "{":
            self.brace = True
        self.add(c)
        return i + 1

    def _slot(self, sc: Cursor, i: int) -> Slot:
        if self.escaped:
            self.escaped = False
            return Slot(Kind.TEXT, "right after a backslash")
        if sc.text[i - 1 : i] == "$":
            return Slot(Kind.TEXT, "right after $")
        return self._word_slot()

    def _word_slot(self) -> Slot:
        at_command = self.word_cmd if self.word else self.starts_command
        if not self.closer:
            return Slot(Kind.PLAIN, forced=at_command or self.brace)
        inside = "inside backticks" if self.closer == "`" else "inside $(...)"
        if at_command:
            return Slot(Kind.NUMBER, f"as a command name or keyword {inside}")
        return Slot(Kind.TEXT, inside)

    @property
    def starts_command(self) -> bool:
        return (self.cmd_pos and not self.redirect) or self.keyword_in == 1

    def add(self, c: str) -> None:
        if not self.word:
            self.word_cmd = self.starts_command
        self.word += c

    def end_word(self, sc: Cursor) -> None:
        word, self.word, self.brace = self.word, "", False
        if not word:
            return
        self.keyword_in = max(self.keyword_in - 1, 0)
        if self.redirect:
            self.redirect = False
            return
        self._keyword(sc, word)
        self.cmd_pos = self.word_cmd and (word in _PREFIXES or bool(_ASSIGNMENT.match(word)))

    def _keyword(self, sc: Cursor, word: str) -> None:
        if word in ("[[", "]]"):
            self.test = word == "[["
        if self.closer and word == "case":  # its `pattern)` would seem to close $(...)
            sc.doubt("'case' inside a command substitution")
        if self.word_cmd and word in _CODE_COMMANDS:
            self.code = word
        if self.word_cmd and word in _IN_AFTER:
            self.keyword_in = 2

    def separate(self, sc: Cursor) -> None:
        self.end_word(sc)
        self.cmd_pos, self.code, self.redirect, self.keyword_in = True, "", False, 0


def _backquote_doubt(sc: Cursor, i: int) -> bool:
    """Backticks are read as far as the next backtick whatever the quotes: only simple ones."""
    c = sc.text[i]
    if c in "'\"\\#\n()" or (c == "$" and sc.ahead(i) in ("(", "{", "[", "'", '"')):
        sc.doubt("quotes, comments, parentheses or expansions inside backticks")
        return True
    return False


def _blank(cmd: _Command, sc: Cursor, i: int) -> int:
    cmd.end_word(sc)
    return i + 1


def _separator(cmd: _Command, sc: Cursor, i: int) -> int:
    cmd.separate(sc)
    return i + 1


def _newline(cmd: _Command, sc: Cursor, i: int) -> int:
    cmd.separate(sc)
    if cmd.closer and sc.pending:
        sc.doubt("a line break inside a command substitution before a here-document")
    elif not cmd.closer:
        sc.start_heredoc()
    return i + 1


def _hash(cmd: _Command, sc: Cursor, i: int) -> int:
    if cmd.word:
        cmd.add("#")
    elif cmd.closer:
        sc.doubt("a comment inside a command substitution")
    else:
        sc.push(Comment())
    return i + 1


def _backslash(cmd: _Command, sc: Cursor, i: int) -> int:
    cmd.escaped = True
    return i + 1


def _quote(cmd: _Command, sc: Cursor, i: int) -> int:
    sc.push(Single() if sc.text[i] == "'" else Double())
    cmd.add(QUOTED)
    return i + 1


def _backtick(cmd: _Command, sc: Cursor, i: int) -> int:
    if cmd.closer == "`":
        cmd.end_word(sc)
        sc.pop()
    else:
        sc.push(_Command("`"))
        cmd.add(QUOTED)
    return i + 1


def _dollar_word(cmd: _Command, sc: Cursor, i: int) -> int:
    cmd.add(QUOTED)
    after = sc.ahead(i)
    if after in ("'", '"'):
        sc.push(Ansi() if after == "'" else Double())
        return i + 2
    return dollar(sc, i, commands=True)


def _open_paren(cmd: _Command, sc: Cursor, i: int) -> int:
    if sc.text[i - 1 : i] in ("<", ">"):  # <(...) and >(...): process substitution
        sc.push(_Command(")"))
        cmd.add(QUOTED)
    elif cmd.word:
        sc.doubt("'(' inside a word (an array, a function or a pattern)")
    elif sc.ahead(i) == "(":
        sc.push(Arith("))"))
        cmd.add(QUOTED)
        return i + 2
    else:
        cmd.separate(sc)
        cmd.depth += 1
    return i + 1


def _close_paren(cmd: _Command, sc: Cursor, i: int) -> int:
    if cmd.closer == ")" and cmd.depth == 0:
        cmd.end_word(sc)
        sc.pop()
        return i + 1
    cmd.depth = max(cmd.depth - 1, 0)
    return _separator(cmd, sc, i)


def _angle(cmd: _Command, sc: Cursor, i: int) -> int:
    if _REDIRECT_PREFIX.fullmatch(cmd.word):  # 2>x: the number belongs to the operator
        cmd.word = ""
    cmd.end_word(sc)
    cmd.redirect = True
    if sc.text[i : i + 2] != "<<":
        return i + 1
    if sc.ahead(i, 2) == "<<":  # a here-string: its word is an ordinary word
        return i + 3
    if cmd.closer:
        sc.doubt("a here-document inside a command substitution")
    strip = sc.ahead(i, 2) == "<-"
    sc.push(Delimiter(strip))
    return i + (3 if strip else 2)


def _bracket(cmd: _Command, sc: Cursor, i: int) -> int:
    if cmd.word and _NAMEISH.fullmatch(cmd.word):  # name[...]: an arithmetic subscript
        sc.push(Arith("]", "inside an array subscript"))
        cmd.add(QUOTED)
    else:
        cmd.add("[")
    return i + 1


_HANDLERS = {
    " ": _blank,
    "\t": _blank,
    "\n": _newline,
    ";": _separator,
    "&": _separator,
    "|": _separator,
    "#": _hash,
    "\\": _backslash,
    "'": _quote,
    '"': _quote,
    "`": _backtick,
    "$": _dollar_word,
    "(": _open_paren,
    ")": _close_paren,
    "<": _angle,
    ">": _angle,
    "[": _bracket,
}
