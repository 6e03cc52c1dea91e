"""The OpenAPI 3.1 document of the REST API, made from the routes and their docstrings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a kebab-case code"},
        "message": {"type": "string"},
        "hint": {"type": "string"},
        "field": {"type": "string", "description": "the request field that is wrong"},
    },
}
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def openapi_document(routes: Sequence[BaseRoute], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if isinstance(route, Route):
            path = _PARAM.sub(r"{\1}", route.path)
            for method in sorted((route.methods or set()) - {"HEAD"}):
                paths.setdefault(path, {})[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.1.0",
        "info": {"title": "runner tracking server", "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
    }


def _operation(route: Route, method: str) -> dict[str, Any]:
    doc = (route.endpoint.__doc__ or route.name).strip()
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{route.name}",
        "summary": doc.splitlines()[0],
        "description": " ".join(line.strip() for line in doc.splitlines()),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.path)
        ],
        "responses": {
            "200": {"description": "done"},
            "400": {"description": "a field is wrong (named in `field`)", **error},
            "401": {"description": "the token is missing or wrong", **error},
            "404": {"description": "no such run or artifact", **error},
        },
    }
    if method in ("POST", "PUT"):
        media = "application/octet-stream" if method == "PUT" else "application/json"
        operation["requestBody"] = {"content": {media: {"schema": {}}}}
    return operation
