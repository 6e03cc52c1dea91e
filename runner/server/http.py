"""Requests in, JSON out: reading bodies and fields with a reason per field, errors as 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runner.errors import RunnerError, RunNotFound

T = TypeVar("T")


class BadRequest(RunnerError):
    """A request whose body or query does not say what the endpoint needs; names the field."""

    code = "bad-request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(RunnerError):
    """A request that cannot be done in the run's present state."""

    code = "conflict"


def error_status(exc: RunnerError) -> int:
    """The HTTP status for an error a user can act on (never a 500)."""
    from runner.server.artifacts import ArtifactNotFound

    if isinstance(exc, RunNotFound | ArtifactNotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def error_response(exc: RunnerError) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.code, "message": exc.message}
    if exc.hint:
        body["hint"] = exc.hint
    if isinstance(exc, BadRequest):
        body["field"] = exc.field
    return JSONResponse(body, status_code=error_status(exc))


def exception_handlers() -> dict[Any, Any]:
    """Errors as JSON: a RunnerError is the client's to fix (4xx), Starlette's own 404/405 too."""
    from starlette.exceptions import HTTPException

    async def runner_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RunnerError)
        return error_response(exc)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        body = {"error": "http-error", "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    return {RunnerError: runner_error, HTTPException: http_error}


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or BadRequest naming ``body``."""
    raw = await request.body()
    try:
        body = json.loads(raw, parse_constant=_no_constant) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise BadRequest("body", f"is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def field(body: Mapping[str, Any], name: str, kind: type[T], *, where: str = "") -> T:
    """A required field of type ``kind``."""
    label = f"{where}{name}"
    if name not in body:
        raise BadRequest(label, "is required")
    return typed(body[name], kind, label)


def optional(body: Mapping[str, Any], name: str, kind: type[T], *, where: str = "") -> T | None:
    value = body.get(name)
    return None if value is None else typed(value, kind, f"{where}{name}")


def typed(value: Any, kind: type[T], label: str) -> T:
    """``value`` if it is a ``kind`` (an int is a float, a bool is neither), else BadRequest."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value]
    if isinstance(value, bool) and kind is not bool:
        raise BadRequest(label, f"must be {_article(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise BadRequest(label, f"must be {_article(kind)}, not {_json_kind(value)}")
    return value


def string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """An optional object of string values (params, tags)."""
    found = optional(body, name, dict) or {}
    return {key: typed(value, str, f"{name}.{key}") for key, value in found.items()}


def number(value: Any, label: str) -> float:
    """A metric value: a JSON number, or the strings NaN/Infinity/-Infinity."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return typed(value, float, label)


def integer(value: Any, label: str, *, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    found = typed(value, int, label)
    if not low <= found <= high:
        raise BadRequest(label, f"must be between {low} and {high}")
    return found


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() and not (text.startswith("-") and text[1:].isdigit()):
        raise BadRequest(name, f"must be an integer, not {text!r}")
    return integer(int(text), name, low=low, high=high)


def each(items: list[Any], label: str, parse: Callable[[Any, str], T]) -> list[T]:
    return [parse(item, f"{label}[{index}]") for index, item in enumerate(items)]


def _article(kind: type) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        dict: "an object",
        bool: "a boolean",
    }
    return names.get(kind, "a list" if kind is list else kind.__name__)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
    return names.get(type(value), "a list" if isinstance(value, list) else type(value).__name__)
