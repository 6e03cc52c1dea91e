"""``${{ params.NAME }}`` and ``${{ steps.STEP.outputs.NAME }}`` in step parameter values."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_OPEN = "${{"
_PLACEHOLDER = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_PARAM = re.compile(r"params\.([A-Za-z_][A-Za-z0-9_]*)")
_OUTPUT = re.compile(r"steps\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([A-Za-z0-9_][A-Za-z0-9_./-]*)")


@dataclass(frozen=True)
class Ref:
    """One reference: to a workflow parameter (``step`` None) or to an output of a step."""

    name: str  # the parameter's name, or the output's name
    step: str | None = None

    def __str__(self) -> str:
        if self.step is None:
            return f"params.{self.name}"
        return f"steps.{self.step}.outputs.{self.name}"


class BadReference(ValueError):
    """A ``${{ ... }}`` that is neither form, or one left open."""


def references(text: str) -> list[Ref]:
    """Every reference in ``text``, in order; BadReference for any malformed one."""
    found = [_parse(match[1]) for match in _PLACEHOLDER.finditer(text)]
    if _OPEN in _PLACEHOLDER.sub("", text):
        raise BadReference(f"'{_OPEN}' is not closed with '}}}}' in {text!r}")
    return found


def substitute(text: str, value_of: Callable[[Ref], str]) -> str:
    """``text`` with each reference replaced by ``value_of(ref)`` (text outside stays as is)."""
    return _PLACEHOLDER.sub(lambda match: value_of(_parse(match[1])), text)


def _parse(inner: str) -> Ref:
    body = inner.strip()
    if param := _PARAM.fullmatch(body):
        return Ref(param[1])
    if output := _OUTPUT.fullmatch(body):
        return Ref(output[2], output[1])
    raise BadReference(
        f"unknown reference '${{{{ {body} }}}}': use ${{{{ params.NAME }}}} or "
        "${{ steps.STEP.outputs.NAME }}"
    )
