"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Services raise :class:`Problem` subclasses; only the HTTP layer turns them into responses, so every
error the API gives has the same shape: ``type``, ``title``, ``status``, ``detail`` and, for input
errors, ``errors`` naming each offending field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

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


class NotRoutable(Problem):
    """The event is valid but the sharing rules can never route it (refused at ingest)."""

    status, slug, title = 422, "not-routable", "The event can never be routed"


class MalformedBody(Problem):
    status, slug, title = 400, "malformed-body", "The request body is not valid JSON"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "The request body is too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "The content type is not supported"


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


# Seconds a client is asked to wait before retrying when a dependency is down.
RETRY_AFTER_S = 2
# Errors that mean "the database cannot be reached right now", not "this request is wrong":
# refused or dropped connections (asyncpg raises OSError subclasses on connect), a server that
# is shutting down or starting up (OperationalError), a connection lost mid-query
# (InterfaceError, or a DBAPIError that invalidated its connection) and an exhausted pool.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)


# SQLSTATEs of an outage: class 08 (connection exception) and the server shutting down, crashed
# or starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now). The
# asyncpg dialect wraps these in a plain DBAPIError, so the class alone does not tell.
OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def database_down(exc: BaseException) -> bool:
    """True for an error that says the database is unreachable (an outage, not a bug)."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(state, str) and state.startswith(OUTAGE_SQLSTATES):
            return True
    return isinstance(exc, DATABASE_DOWN)


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.body(instance=request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _location(loc: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in loc if p != "body") or "body"


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path. Each method is tried against the routes
    (FastAPI wraps included routers in route objects of its own, so reading each route's
    ``methods`` misses them: the Allow header was empty)."""
    methods = {
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")  # broker.web.head answers it
    return sorted(methods)


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
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; RFC 9110 wants them all.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        problem = Problem(str(exc.detail), headers=headers)
        problem.status = exc.status_code
        problem.slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        problem.title = {404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, "HTTP error"
        )
        return problem_response(problem, request)

    async def on_dependency_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_down(exc):
            raise exc  # a real bug: the server error middleware answers 500 and logs it
        problem = Unavailable(
            "the database is unavailable; try again later (sending the same event id again is "
            "safe: ids are idempotency keys)",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    # A database outage is 503 problem+json with Retry-After, like Kafka's: a client retries.
    for kind in (*DATABASE_DOWN, sa_exc.DBAPIError):
        app.add_exception_handler(kind, on_dependency_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
