"""Typed parameters: validation, canonical recorded values, and the command they render into."""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from runner.errors import ParameterError, UsageError
from runner.project.records import EntryPoint, Parameter
from runner.project.template import NUMBER, ends_plain, render_command
from runner.project.template import template_problems as template_problems

EXTRA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_VALUE_BYTES = 100_000
MAX_TOTAL_BYTES = 1_000_000

_INT = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: int() and \d accept any script's digits
_BOOL = frozenset({"true", "false", "1", "0", "yes", "no"})
_NOT_FINITE = frozenset({"nan", "inf", "infinity"})
MASK = "***"  # what is recorded and shown in place of a secret parameter's value


@dataclass(frozen=True)
class ResolvedParams:
    """Parameters after validation: canonical raw strings and the rendered shell command."""

    declared: dict[str, str]  # every declared parameter, defaults included, as the user wrote it
    extra: dict[str, str]  # undeclared -P values, in the order given
    command: str
    paths: tuple[str, ...] = ()  # absolute local paths the command names via `path` parameters
    secret_names: frozenset[str] = frozenset()  # parameters declared `secret: true`

    @property
    def recorded(self) -> dict[str, str]:
        """What is stored on the run: raw values (never the shell-quoted forms), secrets masked."""
        values = {**self.declared, **self.extra}
        return {k: MASK if k in self.secret_names else v for k, v in values.items()}

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to keep out of every record, log and terminal (empty ones mean nothing)."""
        return tuple(v for k, v in self.declared.items() if k in self.secret_names and v)

    @property
    def recorded_command(self) -> str:
        """The command as it is recorded and shown: each secret value (and its quoted form)
        replaced by ``***``."""
        return mask_values(self.command, self.secrets)


def mask_values(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value, raw or shell-quoted, replaced by ``***``."""
    forms = {form for value in secrets if value for form in (shlex.quote(value), value)}
    for form in sorted(forms, key=len, reverse=True):  # the quoted form first: it contains the raw
        text = text.replace(form, MASK)
    return text


def _has_scheme(value: str) -> bool:
    return bool(urlparse(value).scheme)


def _is_float(value: str) -> bool:
    return bool(NUMBER.fullmatch(value)) and math.isfinite(float(value))


_CHECKS: dict[str, Callable[[str], bool]] = {
    "float": _is_float,
    "int": lambda v: bool(_INT.fullmatch(v)),
    "bool": lambda v: v.lower() in _BOOL,
    "uri": _has_scheme,
}


def fits_type(ptype: str, value: str) -> bool:
    """Whether ``value`` is valid for ``ptype``; path, string and unknown types accept anything."""
    check = _CHECKS.get(ptype)
    return check is None or check(value)


def type_error(name: str, ptype: str, value: str) -> str | None:
    """The user-facing reason ``value`` does not fit ``ptype``, or None if it fits."""
    if fits_type(ptype, value):
        return None
    if ptype == "uri":
        return f"Expected URI for parameter {name} but got {value}"
    return f"parameter '{name}': expected {ptype}, got {value!r}{_why_not(ptype, value)}"


def _why_not(ptype: str, value: str) -> str:
    if ptype == "float" and value.strip().lower().lstrip("+-") in _NOT_FINITE:
        return " (nan and infinity are refused)"
    if ptype == "float" and NUMBER.fullmatch(value):
        return " (it overflows to infinity; nan and infinity are refused)"
    if ptype in ("int", "float") and value.strip().isdecimal() and not value.isascii():
        return " (only the ASCII digits 0-9 are accepted)"
    return ""


def parse_param_args(items: Sequence[str]) -> dict[str, str]:
    """Turn ``-P name=value`` strings into a dict; only the first '=' splits."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"Invalid format for -P parameter: '{item}'. Use -P name=value.")
        if not key:
            raise UsageError(f"Invalid -P parameter '{item}': the name before '=' is empty.")
        if key in params:
            raise UsageError(f"Repeated parameter: '{key}'")
        params[key] = value
    return params


# (parameter name, value with a scheme such as runs:/) -> a local path; supplied by the caller,
# so this module knows nothing of where such values come from
Locator = Callable[[str, str], str]


def resolve_params(
    entry: EntryPoint,
    given: Mapping[str, str],
    *,
    cwd: Path,
    locators: Mapping[str, Locator] | None = None,
) -> ResolvedParams:
    """Validate ``given`` against ``entry``'s parameters and render its command line.

    Relative ``path`` values resolve against ``cwd`` (as MLflow does); the command receives the
    absolute path while the recorded value stays what the user typed. ``locators`` maps a URI
    scheme (``runs``) to what turns such a ``path`` value into a local path.
    """
    secrets = [given[p.name] for p in entry.parameters if p.secret and given.get(p.name)]
    try:
        return _resolve(entry, given, cwd, locators or {})
    except ParameterError as exc:  # a refusal names the parameter, never a secret's value
        raise ParameterError(mask_values(exc.message, secrets), hint=exc.hint) from None


def _resolve(
    entry: EntryPoint, given: Mapping[str, str], cwd: Path, locators: Mapping[str, Locator]
) -> ResolvedParams:
    _check_limits(given)
    declared_names = {p.name for p in entry.parameters}
    extra = {k: v for k, v in given.items() if k not in declared_names}
    _check_extra_names(extra)
    raw = _with_defaults(entry.parameters, given)
    values = _command_values(entry.parameters, raw, cwd, locators)
    command = render_command(entry.name, entry.command, values) + _render_extra(entry, extra)
    paths = tuple(values[p.name] for p in entry.parameters if p.type == "path")
    secret = frozenset(p.name for p in entry.parameters if p.secret)
    return ResolvedParams(raw, extra, command, paths, secret)


def _check_limits(given: Mapping[str, str]) -> None:
    total = 0
    for key, value in given.items():
        if "\0" in key or "\0" in value:
            raise ParameterError(f"parameter {key!r} contains a NUL byte")
        size = len(value.encode())
        if size > MAX_VALUE_BYTES:
            raise ParameterError(
                f"value of parameter '{key}' is too long ({size} bytes > {MAX_VALUE_BYTES} bytes)",
                hint="pass large inputs as a file with a path parameter",
            )
        total += size + len(key.encode())
    if total > MAX_TOTAL_BYTES:
        raise ParameterError(
            f"parameters are too large in total ({total} bytes > {MAX_TOTAL_BYTES} bytes)"
        )


def _check_extra_names(extra: Mapping[str, str]) -> None:
    for key in extra:
        if not EXTRA_NAME.fullmatch(key):
            raise ParameterError(
                f"invalid parameter name {key!r}: undeclared parameter names must match "
                f"{EXTRA_NAME.pattern}"
            )


def _with_defaults(parameters: Sequence[Parameter], given: Mapping[str, str]) -> dict[str, str]:
    missing = [p.name for p in parameters if p.name not in given and p.default is None]
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        raise ParameterError(f"No value given for missing parameters: {names}")
    return {p.name: given[p.name] if p.name in given else str(p.default) for p in parameters}


def _command_values(
    parameters: Sequence[Parameter],
    raw: Mapping[str, str],
    cwd: Path,
    locators: Mapping[str, Locator],
) -> dict[str, str]:
    problems = [e for p in parameters if (e := type_error(p.name, p.type, raw[p.name]))]
    if problems:
        raise ParameterError("\n".join(problems))
    return {
        p.name: _local_path(p.name, raw[p.name], cwd, locators) if p.type == "path" else raw[p.name]
        for p in parameters
    }


def _local_path(name: str, value: str, cwd: Path, locators: Mapping[str, Locator]) -> str:
    """The absolute local path for a ``path`` value; remote URIs are refused for now."""
    parsed = urlparse(value)
    if parsed.scheme in locators:
        return locators[parsed.scheme](name, value)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        value = unquote(parsed.path)
    elif parsed.scheme and parsed.scheme != "file":
        raise ParameterError(
            f"parameter '{name}': downloading remote path parameters ({parsed.scheme}://) "
            "is not supported yet",
            hint="download the file first and pass its local path",
        )
    elif parsed.scheme:
        raise ParameterError(f"parameter '{name}': file URIs on other hosts are not supported")
    absolute = os.path.abspath(os.path.join(cwd, value))
    if not os.path.exists(absolute):
        raise ParameterError(
            f"Got value {value} for parameter {name}, but no such file or directory was found."
        )
    return absolute


def _render_extra(entry: EntryPoint, extra: Mapping[str, str]) -> str:
    if extra and not ends_plain(entry.command):
        names = ", ".join(f"'{k}'" for k in extra)
        raise ParameterError(
            f"undeclared parameters ({names}) cannot be added to the command of entry point "
            f"'{entry.name}': it does not end as a plain shell word (it ends inside quotes, a "
            "comment, a here-document or an expansion)",
            hint="declare the parameters in the MLproject and place their placeholders",
        )
    return "".join(f" {shlex.quote('--' + k)} {shlex.quote(v)}" for k, v in extra.items())
