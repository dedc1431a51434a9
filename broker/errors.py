"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Services raise :class:`Problem` subclasses; only the HTTP layer turns them into responses, so every
error the API gives has the same shape: ``type``, ``title``, ``status``, ``detail`` and, for input
errors, ``errors`` naming each offending field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://samsyn.se/problems/"


class Problem(Exception):
    """An error with an HTTP status and a stable problem type."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = self.errors
        return out


class InvalidInput(Problem):
    status, slug, title = 422, "invalid-input", "The request does not match its schema"


class MalformedBody(Problem):
    status, slug, title = 400, "malformed-body", "The request body is not valid JSON"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "The request body is too large"


class Unauthenticated(Problem):
    status, slug, title = 401, "unauthenticated", "A valid bearer token is required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed for this client"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflicts with the current state"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class Unavailable(Problem):
    status, slug, title = 503, "unavailable", "A dependency is unavailable"


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.body(instance=request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _location(loc: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in loc if p != "body") or "body"


def install_handlers(app: FastAPI) -> None:
    """Replace FastAPI's default error bodies with problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"pointer": "/" + _location(tuple(e["loc"])), "detail": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"pointer": "/", "detail": "invalid"}
        problem: Problem
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            problem = MalformedBody("the body is not valid JSON", errors=errors)
        else:
            problem = InvalidInput(f"{first['pointer']}: {first['detail']}", errors=errors)
        return problem_response(problem, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # Starlette's 405 carries the Allow header (RFC 9110); keep whatever headers it set.
        problem = Problem(str(exc.detail), headers=dict(exc.headers or {}))
        problem.status = exc.status_code
        problem.slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        problem.title = {404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, "HTTP error"
        )
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
