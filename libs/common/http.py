"""HTTP plumbing every service shares: the request middleware, JSON in and out."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
import pydantic
import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common import log as logmod
from libs.common import metrics, tracing
from libs.common.errors import (
    Internal,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
    ValidationError,
    render,
)
from libs.common.log import request_id_var, trace_id_var

log = structlog.get_logger()
M = TypeVar("M", bound=pydantic.BaseModel)

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise `data` (dicts, lists, pydantic models, datetimes, UUIDs) with orjson."""
    return Response(_dumps(data), status, headers=headers, media_type="application/json")


def _dumps(data: Any) -> bytes:
    """JSON bytes by orjson, with pydantic models understood."""
    return orjson.dumps(data, default=_default)


def _default(obj: Any) -> Any:
    """Fallback serialiser for orjson."""
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError


def no_content() -> Response:
    """204 with no body."""
    return Response(status_code=204)


async def read_json(request: Request) -> Any:
    """Parse the body as JSON: 415 when it is not JSON, 400 when it does not parse."""
    ctype = request.headers.get("content-type", "")
    if ctype and "json" not in ctype.split(";")[0]:
        raise UnsupportedMediaType(
            "The body must be JSON (Content-Type: application/json).",
            details={"content_type": ctype},
        )
    body = await request.body()
    if not body:
        raise ValidationError("The request body is empty; JSON is expected.")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("The body is not valid JSON.", details={"error": str(exc)}) from None
    # JSON carries NUL only escaped; Postgres text cannot hold it: refuse it here, not with a 500
    if b"\\u0000" in body and (where := _nul_at(doc, "")) is not None:
        raise Unprocessable(
            "The request body is invalid.",
            details={"fields": {where or "body": "holds a NUL character (\\u0000)"}},
        )
    return doc


def _nul_at(doc: Any, path: str) -> str | None:
    """The dotted path of the first string (or key) in the decoded JSON holding NUL, else None."""
    if isinstance(doc, str):
        return path if "\x00" in doc else None
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return None
    for key, value in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return here
        if (found := _nul_at(value, here)) is not None:
            return found
    return None


async def parse_body(request: Request, model: type[M]) -> M:
    """Read the body into `model`; field errors become 422 with `details.fields`."""
    return validate(model, await read_json(request))


def validate(model: type[M], data: Any) -> M:
    """Validate `data` against `model`, raising 422 with field details."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise Unprocessable(
            "The request body is invalid.", details={"fields": field_errors(exc)}
        ) from None


def field_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    """Map pydantic errors to {"a.b": "message"}."""
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in err["loc"]) or "body"
        fields.setdefault(path, err["msg"])
    return fields


def query_model(request: Request, model: type[M]) -> M:
    """Validate query parameters into `model` (400 → 422 with field details)."""
    return validate(model, dict(request.query_params))


WANTED_HEADERS = (b"x-request-id", b"traceparent", b"tracestate", b"content-length")


def _wanted_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The few request headers the middleware reads, decoded (the rest are left alone)."""
    return {k.decode(): v.decode("latin-1") for k, v in raw if k in WANTED_HEADERS}


def _uuid4_hex() -> str:
    """`uuid.uuid4().hex` without building a UUID object.

    16 random bytes, version 4, RFC 4122 variant."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def _span_attributes(scope: Scope) -> dict[str, Any]:
    """The HTTP semantic-convention attributes known before the request is routed."""
    attributes: dict[str, Any] = {
        "http.request.method": scope.get("method", "GET"),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    server = scope.get("server")
    if server:
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    return attributes


def _finish_span(span: Any, method: str, route: str, status: int) -> None:
    """Name the request's span by its route template (never the raw path) and note its status."""
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        tracing.fail(span, str(status))


class RequestContextMiddleware:
    """Request id, trace id, body limit, metrics, access log and the last-resort error handler."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body_bytes: int,
        instance: str,
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        # per-route overrides, {path regex: max bytes}: the first whose regex matches the path
        self.body_limits = [(re.compile(k), v) for k, v in (body_limits or {}).items()]
        # which replica answered: scale tests and operators read it
        self.instance_header = (b"x-switchboard-instance", instance.encode("latin-1", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP or WebSocket scope with its request context; others pass through."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _wanted_headers(scope["headers"])
        if tracing.enabled:  # a SERVER span, the child of the client's traceparent if it sent one
            with tracing.server_span(scope.get("method", "GET"), headers) as span:
                span.set_attributes(_span_attributes(scope))
                await self._serve(scope, receive, send, headers, span)
            return
        await self._serve(scope, receive, send, headers, None)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], span: Any
    ) -> None:
        """Serve one scope with its request id and trace id (the span's, when there is one)."""
        request_id = headers.get("x-request-id", "")
        if not REQUEST_ID_RE.match(request_id):
            request_id = _uuid4_hex()
        if span is not None:
            trace_id = tracing.trace_id_of(span)
        else:
            match = TRACEPARENT_RE.match(headers.get("traceparent", ""))
            trace_id = match.group(1) if match else _uuid4_hex()
        rid_token = request_id_var.set(request_id)
        tid_token = trace_id_var.set(trace_id)
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        scope["state"]["trace_id"] = trace_id
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(rid_token)
                trace_id_var.reset(tid_token)
            return
        start = time.perf_counter()
        status = 500
        started = False
        root_path = scope.get("root_path", "")

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    self.instance_header,
                ]
            await send(message)

        try:
            limit = self.body_limit(scope.get("path", ""))
            declared = headers.get("content-length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(
                    f"The body is larger than {limit} bytes.", details={"limit": limit}
                )
            if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
                # Postgres text cannot hold NUL: refuse it here rather than fail later with a 500
                raise ValidationError("The path or query contains a NUL character.")
            await self.app(scope, self._limited(receive, limit), send_wrapper)
        except ValidationError as exc:
            if not started:
                await render(exc)(scope, receive, send_wrapper)
        except PayloadTooLarge as exc:
            if not started:
                await render(exc)(scope, receive, send_wrapper)
        except ClientDisconnect:
            # the client went away while its body was read: nobody is left to answer, and it
            # is the client's doing, not a fault (a load generator does it at every run's end)
            status = 499
            log.info("client_disconnected", path=scope.get("path"), method=scope["method"])
        except Exception:
            log.exception("unhandled_exception", path=scope.get("path"), method=scope["method"])
            if not started:
                err = Internal("An unexpected error occurred.", details={"request_id": request_id})
                await render(err)(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = metrics.matched_template(scope, root_path)
            metrics.observe_request(self.service, scope["method"], route, status, elapsed)
            if logmod.access_enabled and route not in metrics.QUIET_ROUTES:
                logmod.access_line(scope["method"], route, status, elapsed)
            if span is not None:
                _finish_span(span, scope["method"], route, status)
            request_id_var.reset(rid_token)
            trace_id_var.reset(tid_token)

    def body_limit(self, path: str) -> int:
        """The most bytes a request body to `path` may carry: its route's override, else the cap."""
        for pattern, limit in self.body_limits:
            if pattern.match(path):
                return limit
        return self.max_body_bytes

    def _limited(self, receive: Receive, limit: int) -> Receive:
        """Wrap `receive` so a streamed body over `limit` raises PayloadTooLarge."""
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(
                        f"The body is larger than {limit} bytes.", details={"limit": limit}
                    )
            return message

        return wrapped
