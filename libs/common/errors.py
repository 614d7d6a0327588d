"""One error class per DESIGN code and the one renderer every service uses."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from libs.common.log import request_id_var

log = structlog.get_logger()


class ApiError(Exception):
    """An error that maps to an HTTP status and a DESIGN error code."""

    status = 500
    code = "INTERNAL"

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class ValidationError(ApiError):
    """Unparseable input (400); `Unprocessable` is for well-formed but invalid input."""

    status = 400
    code = "VALIDATION_ERROR"


class Unprocessable(ApiError):
    """Well-formed input that breaks a rule; `details.fields` names each field."""

    status = 422
    code = "VALIDATION_ERROR"


class Unauthenticated(ApiError):
    """No credential, or one that does not verify."""

    status = 401
    code = "UNAUTHENTICATED"


class PlanLimit(ApiError):
    """The org's plan allows no more of something (seats, private MCPs, scans); see plans.py."""

    status = 402
    code = "PLAN_LIMIT"


class Forbidden(ApiError):
    """A valid credential without the needed role, scope or grant."""

    status = 403
    code = "FORBIDDEN"


class NotFound(ApiError):
    """No such resource (or route)."""

    status = 404
    code = "NOT_FOUND"


class MethodNotAllowed(ApiError):
    """The route exists but not with this method."""

    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(ApiError):
    """The resource exists or the state forbids the change."""

    status = 409
    code = "CONFLICT"


class PayloadTooLarge(ApiError):
    """The body is over the configured limit."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    """The body is not JSON (or not the expected type)."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class RateLimited(ApiError):
    """Too many requests from this identity."""

    status = 429
    code = "RATE_LIMITED"


class UpstreamError(ApiError):
    """An upstream (MCP server, other service) failed."""

    status = 502
    code = "UPSTREAM_ERROR"


class Unavailable(ApiError):
    """A dependency is not reachable right now."""

    status = 503
    code = "UNAVAILABLE"


class UpstreamTimeout(ApiError):
    """An upstream did not answer in time."""

    status = 504
    code = "UPSTREAM_TIMEOUT"


class Internal(ApiError):
    """An unexpected failure; never carries internals."""

    status = 500
    code = "INTERNAL"


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: RateLimited,
    502: UpstreamError,
    503: Unavailable,
    504: UpstreamTimeout,
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DESIGN error envelope."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def render(error: ApiError) -> Response:
    """Render an ApiError as its JSON response."""
    body = orjson.dumps(error_body(error.code, error.message, error.details))
    return Response(body, error.status, headers=error.headers, media_type="application/json")


async def handle_api_error(request: Request, exc: Exception) -> Response:
    """Starlette handler for ApiError."""
    assert isinstance(exc, ApiError)
    return render(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette handler that turns routing 404/405 and others into the DESIGN envelope."""
    assert isinstance(exc, HTTPException)
    cls = _BY_STATUS.get(exc.status_code, Internal if exc.status_code >= 500 else ValidationError)
    message = {404: "No route matches this path.", 405: "Method not allowed on this path."}.get(
        exc.status_code, str(exc.detail)
    )
    err = cls(message, details={"path": request.url.path} if exc.status_code == 404 else None)
    err.status = exc.status_code
    return render(err) if not exc.headers else _with_headers(render(err), exc.headers)


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    """Copy extra headers (e.g. Allow) onto a response."""
    for key, value in headers.items():
        response.headers[key] = value
    return response


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Log an unexpected exception and answer INTERNAL without internals."""
    log.exception("unhandled_exception", path=request.url.path, method=request.method)
    return render(
        Internal("An unexpected error occurred.", details={"request_id": request_id_var.get()})
    )


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
