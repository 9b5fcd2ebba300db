"""Errors as RFC 9457 problem details, naming the field that is wrong.

Bad input is the client's to fix, so it gets a 4xx that says what to fix; an unexpected
error gets a 500 with no internals in it (they go to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, title: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem(status: int, title: str, detail: str = "", **extra: Any) -> JSONResponse:
    body = problem_body(status, title, detail, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "packageInfo", "size") -> "packageInfo.size"; the location kind is implied.
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path")
        else [str(p) for p in loc]
    )
    return ".".join(parts) or str(loc[0] if loc else "body")


def invalid_body(errors: Sequence[Any]) -> dict[str, Any]:
    """The 400 problem for pydantic's errors, each naming its field."""
    named = [
        {"field": "body", "message": "the body is not valid JSON"}
        if e.get("type") == "json_invalid"
        else {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in errors
    ]
    fields = ", ".join(e["field"] for e in named)
    return problem_body(400, "Invalid request", f"invalid or missing: {fields}", errors=named)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(invalid_body(exc.errors()), status_code=400, media_type=PROBLEM_JSON)


def http_error_body(exc: HTTPException) -> dict[str, Any]:
    detail = exc.detail if isinstance(exc.detail, str) else ""
    return problem_body(exc.status_code, _title(exc.status_code), detail)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body = http_error_body(exc)
    response = JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


# Errors that mean a server the service depends on could not be reached (a datastore
# restarting, say): by module and class name, so that the chassis imports no driver.
_UNAVAILABLE = {
    ("asyncpg.exceptions", "ConnectionDoesNotExistError"),
    ("asyncpg.exceptions", "CannotConnectNowError"),
    ("asyncpg.exceptions", "ConnectionFailureError"),
    ("asyncpg.exceptions", "AdminShutdownError"),
    ("asyncpg.exceptions", "CrashShutdownError"),
    ("asyncpg.exceptions", "TooManyConnectionsError"),
    ("asyncpg.exceptions._base", "InterfaceError"),
    ("redis.exceptions", "ConnectionError"),
    ("redis.exceptions", "TimeoutError"),
    ("redis.exceptions", "BusyLoadingError"),
}


def is_unavailable(exc: BaseException) -> bool:
    """Whether the error (or one it was raised from) is a dependency out of reach."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OSError | TimeoutError):
            return True
        if any((c.__module__, c.__name__) in _UNAVAILABLE for c in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if is_unavailable(exc):
        # Transient, and nothing was done: the caller may retry (a 500 says it should not).
        log.warning("unavailable on %s %s: %r", request.method, request.url.path, exc)
        response = problem(503, "Service Unavailable", "a server it depends on is unavailable")
        response.headers["Retry-After"] = "1"
        return response
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal Server Error", "the error was logged")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_DESCRIPTIONS = {
    400: "Invalid request: `errors` names each bad field",
    404: "No such resource",
    409: "Conflicts with the resource's state (for example, it was cancelled)",
    422: "The Idempotency-Key was first used with a different request",
    503: "Temporarily unavailable; nothing was done. Retry after `Retry-After` seconds",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation for the problem answers a route gives."""
    return {
        s: {
            "description": _DESCRIPTIONS.get(s, _title(s)),
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        for s in statuses
    }


def document_problems(app: FastAPI) -> None:
    """Say in the OpenAPI document what the API really answers to bad input: a 400 problem,
    not FastAPI's default 422 (the original answered 400; its clients expect that)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                default = responses.get("422", {}).get("description") == "Validation Error"
                if default:  # FastAPI's own; a route's deliberate 422 stays
                    del responses["422"]
                    responses.setdefault("400", problem_responses(400)[400])
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
