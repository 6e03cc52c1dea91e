"""MLflow's REST conventions: request fields from JSON bodies or query strings, errors as
``{"error_code": ..., "message": ...}``, responses as JSON with non-finite numbers spelled out."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runner.errors import RunnerError, RunNotFound

INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
INT64 = (-(2**63), 2**63 - 1)
Fields = Mapping[str, Any]
Handler = Callable[[Fields], Any]


class MlflowError(Exception):
    """An error the MLflow client understands: its code, a message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def invalid(field: str, reason: str) -> MlflowError:
    return MlflowError(INVALID, f"Invalid value for parameter '{field}': {reason}")


def error_response(exc: MlflowError) -> JSONResponse:
    return JSONResponse({"error_code": exc.code, "message": exc.message}, exc.status)


def from_runner_error(exc: RunnerError) -> MlflowError:
    """The store's refusals as MLflow errors: an unknown run is a 404, anything else a 400."""
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    if isinstance(exc, RunNotFound):
        return MlflowError(MISSING, message, 404)
    if exc.code == "artifact-not-found":
        return MlflowError(MISSING, message, 404)
    return MlflowError(INVALID, message)


def json_response(data: Mapping[str, Any]) -> Response:
    """Strict JSON: NaN and infinities become the strings protobuf's JSON mapping reads."""
    body = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


async def request_fields(request: Request) -> dict[str, Any]:
    """A GET's query (repeated keys become lists), else the JSON object body."""
    if request.method in ("GET", "DELETE"):
        fields: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in fields:
                previous = fields[key]
                fields[key] = (
                    [*previous, value] if isinstance(previous, list) else [previous, value]
                )
            else:
                fields[key] = value
        return fields
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise MlflowError(INVALID, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MlflowError(INVALID, "the request body must be a JSON object")
    return body


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that reads the fields, runs ``handler`` off the event loop (the
    store blocks) and answers in MLflow's format, errors included (never a 500 for bad input)."""
    from starlette.concurrency import run_in_threadpool

    async def serve(request: Request) -> Response:
        try:
            fields = {**await request_fields(request), **request.path_params}
            result = await run_in_threadpool(handler, fields)
        except MlflowError as exc:
            return error_response(exc)
        except RunnerError as exc:
            return error_response(from_runner_error(exc))
        return result if isinstance(result, Response) else json_response(result or {})

    return serve


def text(fields: Fields, name: str, *, required: bool = True, default: str = "") -> str:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise MlflowError(INVALID, f"Missing value for required parameter '{name}'.")
        return default
    if not isinstance(value, str):
        raise invalid(name, f"must be a string, not {_kind(value)}")
    return value


def run_id(fields: Fields) -> str:
    """``run_id``, or the older ``run_uuid`` that clients still send beside it."""
    found = fields.get("run_id") or fields.get("run_uuid")
    return text({"run_id": found}, "run_id")


def integer(fields: Fields, name: str, default: int | None = None) -> int | None:
    """An int64 field: a JSON number, or the decimal string protobuf's JSON and queries use."""
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(name, "must be an integer, not a boolean")
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped.lstrip("-").isdigit() or not stripped.isascii():
            raise invalid(name, f"must be an integer, not {value!r}")
        value = int(stripped)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise invalid(name, f"must be an integer, not {_kind(value)}")
    if not INT64[0] <= value <= INT64[1]:
        raise invalid(name, f"{value} does not fit in 64 bits")
    return value


def number(fields: Fields, name: str) -> float:
    """A double: a JSON number or "NaN" / "Infinity" / "-Infinity" (protobuf's JSON)."""
    value = fields.get(name)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"):
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is None:
            raise MlflowError(INVALID, f"Missing value for required parameter '{name}'.")
        raise invalid(name, f"must be a number, not {_kind(value)}")
    return float(value)


def items(fields: Fields, name: str) -> list[Fields]:
    """A repeated message field: a list of JSON objects (absent is empty)."""
    value = fields.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid(name, "must be a list of objects")
    return value


def strings(fields: Fields, name: str) -> list[str]:
    """A repeated string field (a query gives one string for a single value)."""
    value = fields.get(name)
    if value is None:
        return []
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
        raise invalid(name, "must be a list of strings")
    return found


def key_values(fields: Fields, name: str) -> dict[str, str]:
    """Params or tags as ``[{"key": k, "value": v}]`` → ``{k: v}`` (the last of a key wins)."""
    pairs: dict[str, str] = {}
    for index, item in enumerate(items(fields, name)):
        label = f"{name}[{index}]"
        key = text(item, "key") if "key" in item else ""
        if not key:
            raise invalid(f"{label}.key", "is required")
        pairs[key] = _value_text(item.get("value"), f"{label}.value")
    return pairs


def _value_text(value: Any, label: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(label, f"must be a string, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
    return names.get(type(value), "a list" if isinstance(value, list) else type(value).__name__)
