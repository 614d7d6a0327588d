"""Tracing: OpenTelemetry spans, W3C trace context in and out, OTLP/HTTP export when configured.

Off unless an OTLP endpoint is set (docs/DEPLOY.md, "Tracing"). Off, every helper returns at
once on the module boolean `enabled` and creates nothing: the gateway's per-call path pays one
attribute read. On, a span's trace id is also the logs' `trace_id` while it is current.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_trace_id, use_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from libs.common.log import trace_id_var
from libs.common.settings import Settings, SettingsError

SERVER, CLIENT, CONSUMER = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.CONSUMER
INTERNAL = SpanKind.INTERNAL
ERROR_TYPE = "error.type"
RPC_STATUS_CODE = "rpc.response.status_code"  # a JSON-RPC error's code (MCP conventions)

enabled = False  # read by every helper and by hot paths before they prepare a span's attributes
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_propagator = TraceContextTextMapPropagator()  # traceparent and tracestate, nothing else


class _Off:
    """What a span helper returns while tracing is off: `with` it yields None."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


OFF = _Off()


def traces_endpoint(settings: Settings) -> str:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else the base URL + /v1/traces."""
    if settings.otlp_traces_endpoint:
        return settings.otlp_traces_endpoint
    if settings.otlp_endpoint:
        return settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    return ""


def configure(settings: Settings, instance: str, processor: SpanProcessor | None = None) -> bool:
    """Turn tracing on when an endpoint is configured (or `processor` is given); True when on.

    Spans are batched to the OTLP/HTTP exporter (OTEL_BSP_* and OTEL_EXPORTER_OTLP_HEADERS /
    _TIMEOUT apply as the SDK reads them); root spans are sampled at
    SWITCHBOARD_TRACE_SAMPLE_RATIO, others follow their parent's decision."""
    global enabled, _tracer, _provider
    ratio = settings.trace_sample_ratio
    if not 0.0 <= ratio <= 1.0:
        raise SettingsError(f"SWITCHBOARD_TRACE_SAMPLE_RATIO must be within 0..1 (got {ratio})")
    endpoint = traces_endpoint(settings)
    if processor is None and (settings.otel_sdk_disabled or not endpoint):
        return False
    shutdown()
    resource = Resource.create(
        {
            "service.name": f"switchboard-{settings.service}",
            "service.namespace": "switchboard",
            "service.instance.id": instance,
            "service.version": settings.version,
        }
    )
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)), resource=resource)
    provider.add_span_processor(processor or BatchSpanProcessor(OTLPSpanExporter(endpoint)))
    _provider, _tracer = provider, provider.get_tracer("switchboard", settings.version)
    enabled = True
    return True


def shutdown() -> None:
    """Export what is still batched and turn tracing off (at service stop)."""
    global enabled, _tracer, _provider
    provider, _provider, _tracer, enabled = _provider, None, None, False
    if provider is not None:
        provider.shutdown()


def server_span(
    name: str,
    headers: Mapping[str, str] | None,
    kind: SpanKind = SERVER,
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """A span for work a peer asked for, the child of the `traceparent` in `headers` if any.

    Use as `with server_span(...) as span:`; `span` is None while tracing is off."""
    if not enabled:
        return OFF
    parent = _propagator.extract(headers) if headers else None
    return _current(name, kind, parent, attributes)


def started_span(
    name: str,
    headers: Mapping[str, str] | None,
    kind: SpanKind = CONSUMER,
    attributes: Mapping[str, Any] | None = None,
) -> Span | None:
    """Like `server_span`, but started without becoming current (None while tracing is off).

    For messages handled as a batch: each message's span covers the batch; `resumed` makes one
    current while its message is handled alone; the caller ends each with `span.end()`."""
    if not enabled:
        return None
    assert _tracer is not None
    parent = _propagator.extract(headers) if headers else None
    return _tracer.start_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


@contextmanager
def resumed(current: Span | None) -> Iterator[Span | None]:
    """Make a started span current (for children and the logs' trace id) without ending it."""
    if current is None:
        yield None
        return
    token = trace_id_var.set(trace_id_of(current))
    try:
        with use_span(current, record_exception=False, set_status_on_exception=False):
            yield current
    finally:
        trace_id_var.reset(token)


def span(
    name: str,
    target: str = "",
    kind: SpanKind = INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """A span named `name target` (`name` alone without a target), child of the current one.

    The name is only joined when tracing is on; `span` is None while it is off."""
    if not enabled:
        return OFF
    return _current(f"{name} {target}" if target else name, kind, None, attributes)


def inject(headers: dict[str, str]) -> None:
    """Add the current span's `traceparent` (and `tracestate`) to outgoing `headers`.

    Nothing while tracing is off or no span is current."""
    if enabled:
        _propagator.inject(headers)


def trace_id_of(current: Span) -> str:
    """A span's trace id as the 32 hex digits logs and records carry."""
    return format_trace_id(current.get_span_context().trace_id)


def fail(current: Span, error_type: str, message: str | None = None) -> None:
    """Mark a span failed: `error.type` and an ERROR status with `message`."""
    current.set_attribute(ERROR_TYPE, error_type)
    current.set_status(Status(StatusCode.ERROR, message))


@contextmanager
def _current(
    name: str, kind: SpanKind, parent: Context | None, attributes: Mapping[str, Any] | None
) -> Iterator[Span]:
    """Start a span, make it current (for children and for the logs' trace id), end it."""
    assert _tracer is not None
    with _tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,  # set below, with error.type
    ) as current:
        token = trace_id_var.set(trace_id_of(current))
        try:
            yield current
        except BaseException as exc:
            if ERROR_TYPE not in (getattr(current, "attributes", None) or {}):
                fail(current, type(exc).__qualname__, str(exc) or None)
            raise
        finally:
            trace_id_var.reset(token)
