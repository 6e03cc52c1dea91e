"""One exception hierarchy for everything a user can be told; imports nothing from the project."""

from __future__ import annotations

import re

_CODE = re.compile(r"^[a-z]+(-[a-z]+)*$")


class RunnerError(Exception):
    """An error the user can act on: a message, an optional hint and a kebab-case code.

    The CLI prints ``message`` (and ``hint`` below it) without a traceback and exits 1.
    """

    code = "runner-error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        assert _CODE.match(self.code), f"error code {self.code!r} must be kebab-case"
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class UsageError(RunnerError):
    """A command line that cannot be understood (exit 2)."""

    code = "usage-error"


class SpecError(RunnerError):
    """The MLproject (or a file it names) is invalid."""

    code = "spec-error"


class ParameterError(RunnerError):
    """A ``-P`` value does not fit its declared type, or a required one is missing."""

    code = "parameter-error"


class SourceError(RunnerError):
    """The project URI cannot be fetched or is refused for safety."""

    code = "source-error"


class EnvBuildError(RunnerError):
    """An environment could not be resolved, built or health-checked."""

    code = "env-build-error"

    def __init__(self, message: str, *, hint: str | None = None, log: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log = log


class BackendError(RunnerError):
    """A backend could not be found, prepared or launched."""

    code = "backend-error"


class StoreError(RunnerError):
    """The tracking store cannot be opened, migrated or written."""

    code = "store-error"


class RunNotFound(StoreError):
    """No run has the given id."""

    code = "run-not-found"
