"""Answers every error as RFC 9457 problem+json with a clear message; invalid input is a 4xx."""

from __future__ import annotations

import csv
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engagiert.shared.logging import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


class Problem(Exception):
    """An error answered as problem+json: raise it from a route or a dependency."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """Return the problem+json document."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    """Return ``problem`` as a problem+json response."""
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return JSONResponse(
        problem.body(str(request.url.path) if request else None),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make ``app`` answer problems, validation errors, HTTP errors and crashes as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(".".join(e["loc"][1:] or e["loc"]) for e in errors[:5])
        return problem_response(
            Problem(422, "Invalid request", f"check these fields: {fields}", extra={"errors": errors}),
            request,
        )

    @app.exception_handler(ValidationError)
    async def _invalid_model(request: Request, exc: ValidationError) -> JSONResponse:
        # A model built from the input inside a use case: still the caller's input, so a 4xx.
        errors = [{"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", "")} for err in exc.errors()]
        return problem_response(
            Problem(422, "Invalid request", f"{exc.error_count()} values are not valid", extra={"errors": errors}),
            request,
        )

    @app.exception_handler(csv.Error)
    async def _unreadable_csv(request: Request, exc: csv.Error) -> JSONResponse:
        return problem_response(Problem(422, "Invalid file", f"the CSV cannot be read: {exc}"), request)

    @app.exception_handler(UnicodeDecodeError)
    async def _not_utf8(request: Request, exc: UnicodeDecodeError) -> JSONResponse:
        return problem_response(Problem(422, "Invalid request", "the input is not valid UTF-8"), request)

    @app.exception_handler(OverflowError)
    async def _too_large_number(request: Request, exc: OverflowError) -> JSONResponse:
        # The store takes 64-bit integers; pydantic's int has no bound, so a huge number got this far.
        return problem_response(Problem(422, "Invalid request", "a number in the input is too large"), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            401: "Authentication required",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
            422: "Invalid request",
            429: "Too many requests",
        }
        return problem_response(
            Problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)), request
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return problem_response(Problem(500, "Internal error", "the error was logged"), request)
