"""The API's edge for errors: exception class → status in one table, one JSON body.

Every error response, whatever raised it, has the body::

    {"error": {"code": "lease_expired", "message": "…", "hint": "…" | null,
               "details": [...]}}

Domain code raises :mod:`labelwise.exceptions`; :data:`STATUS_BY_ERROR` maps
them to HTTP statuses (the first matching class wins). FastAPI's request
validation errors (422), Starlette's HTTP errors (404 for unknown routes, 405)
and unexpected exceptions (500) are rendered in the same shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from labelwise.exceptions import (
    ConfigError,
    ConflictError,
    ImportRejected,
    InvalidInputError,
    LabelwiseError,
    NotFoundError,
    PermissionDenied,
    PoolExhausted,
)
from labelwise.service.api.schemas import ErrorBody
from labelwise.service.store.members import NotAuthenticated

__all__ = [
    "STATUS_BY_ERROR",
    "error_body",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "status_for",
]

#: HTTP status by exception class; the first class that matches wins.
STATUS_BY_ERROR: tuple[tuple[type[LabelwiseError], int], ...] = (
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (ImportRejected, 400),
    (InvalidInputError, 400),
    (ConfigError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PoolExhausted, 409),
    (LabelwiseError, 400),
)

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


_DESCRIPTIONS = {
    400: "Bad input (invalid_input, unknown_name, config_error, import_rejected).",
    401: "No valid API token (not_authenticated).",
    403: "The caller's role does not allow this (permission_denied).",
    404: "No such project, item, lease or member among the caller's projects.",
    409: "Clashes with the current state (conflict, lease_expired, cap_reached, "
    "pool_exhausted).",
    422: "The request does not match the schema (invalid_request).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for ``statuses``, each with the error body."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


def status_for(error: LabelwiseError) -> int:
    """The HTTP status of ``error``."""
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(error, cls))


def error_body(
    code: str,
    message: str,
    *,
    hint: str | None = None,
    details: list[Any] | None = None,
) -> dict[str, Any]:
    """The one JSON error body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "hint": hint,
            "details": list(details or []),
        }
    }


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    hint: str | None = None,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying the error body."""
    return JSONResponse(
        error_body(code, message, hint=hint, details=details),
        status_code=status,
        headers=headers,
    )


def _labelwise_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LabelwiseError)
    status = status_for(exc)
    details: list[Any] = []
    if isinstance(exc, ImportRejected):
        details = [
            {
                "path": record.path,
                "line": record.line,
                "field": record.field,
                "message": record.message,
            }
            for record in exc.errors
        ]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(
        status, exc.code, exc.message, hint=exc.hint, details=details, headers=headers
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the input back: it may hold a label, a note or a secret.
    details = [
        {
            "loc": _location(error.get("loc", ())),
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    where = ", ".join(d["loc"] for d in details) or "the request"
    return error_response(
        422,
        "invalid_request",
        f"The request does not match the endpoint's schema: {len(details)} "
        f"problem{'s' if len(details) != 1 else ''} ({where}).",
        hint="Fix the fields listed in details; the schema is at "
        "/api/v1/openapi.json (browse it at /api/v1/docs).",
        details=details,
    )


#: FastAPI's detail for a body it could not decode (not UTF-8, not form data).
_BODY_UNREADABLE = "There was an error parsing the body"


def _unreadable_body() -> JSONResponse:
    """FastAPI's bare 400 for an undecodable body, as the schema error it is (422)."""
    return error_response(
        422,
        "invalid_request",
        "The request body could not be read: it is not UTF-8 JSON (or not the "
        "form data this endpoint takes).",
        hint="Send a UTF-8 JSON body with 'Content-Type: application/json'; the "
        "schema is at /api/v1/openapi.json (browse it at /api/v1/docs).",
        details=[
            {
                "loc": "body",
                "message": "could not be decoded",
                "type": "body_unreadable",
            }
        ],
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and exc.detail == _BODY_UNREADABLE:
        return _unreadable_body()
    code = _CODE_BY_STATUS.get(status, "http_error")
    hint = None
    if status == 404:
        message = f"No endpoint at {request.url.path!r}."
        hint = "See the endpoints at /api/v1/docs (all of them start with /api/v1)."
    elif status == 405:
        allowed = (exc.headers or {}).get("allow") or (exc.headers or {}).get(
            "Allow", ""
        )
        message = f"Method {request.method} is not allowed on {request.url.path!r}" + (
            f"; allowed: {allowed}." if allowed else "."
        )
        hint = "Use one of the allowed methods (see /api/v1/docs)."
    else:
        message = str(exc.detail)
    return error_response(
        status, code, message, hint=hint, headers=dict(exc.headers or {}) or None
    )


def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
    return error_response(
        500,
        "internal_error",
        "The server failed to handle the request (an unexpected error; it is in "
        "the server's log).",
        hint="Retry; if it keeps failing, report it with the time of the request.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as the one JSON body."""
    app.add_exception_handler(LabelwiseError, _labelwise_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
