"""Documents every error a service answers in its OpenAPI document: ``application/problem+json`` and its schema.

FastAPI lists only 2xx and a 422 with its own validation schema; the services answer every
error as RFC 9457 problem+json (:mod:`engagiert.shared.problems`), from the routes, the
authentication and the edge middlewares (413, 422, 429, see :mod:`engagiert.shared.edges`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from engagiert.shared.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "a URI naming the problem type (about:blank)"},
        "title": {"type": "string", "description": "a short summary"},
        "status": {"type": "integer", "description": "the HTTP status"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "instance": {"type": "string", "description": "the request's path"},
        "errors": {
            "type": "array",
            "description": "the fields that failed validation (422)",
            "items": {"type": "object"},
        },
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}

EVERY_OPERATION = {
    "400": "Bad request: the body or a header could not be read",
    "404": "Not found (also for a municipality the caller may not act for)",
    "409": "Conflict with the resource's state",
    "413": "Content too large: the body is over the route's limit",
    "422": "Invalid request: a field, the query, or control characters in the input",
    "429": "Too many requests: see Retry-After",
}
SECURED = {"401": "Authentication required", "403": "Forbidden: the caller's roles do not allow this"}
PUBLIC = {"403": "The link or code is forged", "410": "The link or code has expired"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _content(operation: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    ok: dict[str, Any] = next((r for code, r in operation.get("responses", {}).items() if code.startswith("2")), {})
    if "text/html" in ok.get("content", {}):
        # Pages answer their own errors as pages; the edge (413, 429) still answers problem+json.
        content["text/html"] = {"schema": {"type": "string"}}
    return content


NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f]*$"
"""The pattern every input string meets: the edge refuses C0 controls but tab and newlines with 422."""


def _constrain_strings(node: Any) -> None:
    """Add :data:`NO_CONTROL_CHARACTERS` to every free-text string schema under ``node`` (in place)."""
    if isinstance(node, list):
        for item in node:
            _constrain_strings(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_string and not any(k in node for k in ("format", "enum", "const", "pattern", "contentMediaType")):
        node["pattern"] = NO_CONTROL_CHARACTERS
    for key, value in node.items():
        if key not in ("responses", "examples", "example", "default"):
            _constrain_strings(value)


def add_problem_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem+json error responses and the no-control-characters pattern to ``schema`` (in place)."""
    _constrain_strings(schema.get("paths", {}))
    _constrain_strings(schema.get("components", {}).get("schemas", {}))
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for item in schema.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            errors = {**EVERY_OPERATION, **(SECURED if operation.get("security") else PUBLIC)}
            responses = operation.setdefault("responses", {})
            for code, description in sorted(errors.items()):
                responses[code] = {"description": description, "content": _content(operation)}
    schemas = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list every error response as problem+json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = add_problem_responses(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
