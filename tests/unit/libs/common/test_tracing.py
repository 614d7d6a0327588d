"""Tracing: off by default and then inert; on, spans with names, kinds, parents and traceparent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from libs.common import tracing
from libs.common.errors import EXCEPTION_HANDLERS
from libs.common.http import RequestContextMiddleware
from libs.common.log import trace_id_var
from libs.common.settings import Settings, SettingsError

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, its finished spans kept in memory."""
    exporter = InMemorySpanExporter()
    assert tracing.configure(Settings(), "test-1", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    """The finished spans by name."""
    return {span.name: span for span in exporter.get_finished_spans()}


def test_without_an_endpoint_tracing_stays_off_and_its_helpers_are_inert() -> None:
    assert not tracing.configure(Settings(), "test-1")
    assert not tracing.enabled
    headers: dict[str, str] = {}
    with tracing.span("tools/call", "add", tracing.CLIENT) as inner:
        tracing.inject(headers)
        assert inner is None
    with tracing.server_span("GET", {"traceparent": TRACEPARENT}) as outer:
        assert outer is None
    assert headers == {}
    assert tracing.span("x") is tracing.server_span("y", None) is tracing.OFF


def test_the_sdk_disabled_variable_wins_over_an_endpoint() -> None:
    settings = Settings.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.configure(settings, "test-1")
    assert not tracing.enabled


def test_the_traces_endpoint_is_the_specific_variable_else_the_base_url_with_its_path() -> None:
    base = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert tracing.traces_endpoint(base) == "http://collector:4318/v1/traces"
    both = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/traces",
        }
    )
    assert tracing.traces_endpoint(both) == "http://other:4318/traces"
    assert tracing.traces_endpoint(Settings()) == ""


def test_a_sampling_ratio_outside_zero_to_one_is_refused_naming_its_variable() -> None:
    settings = Settings.from_env({"SWITCHBOARD_TRACE_SAMPLE_RATIO": "1.5"})
    with pytest.raises(SettingsError, match="SWITCHBOARD_TRACE_SAMPLE_RATIO"):
        tracing.configure(settings, "test-1")


def test_an_endpoint_turns_tracing_on_until_shutdown() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert tracing.configure(settings, "test-1")
    assert tracing.enabled
    tracing.shutdown()  # nothing was recorded: nothing is sent to the unreachable endpoint
    assert not tracing.enabled


def test_spans_carry_the_service_resource(spans: InMemorySpanExporter) -> None:
    with tracing.span("work"):
        pass
    resource = by_name(spans)["work"].resource.attributes
    assert resource["service.name"] == "switchboard-switchboard"
    assert resource["service.instance.id"] == "test-1"
    assert resource["service.version"] == Settings().version


def test_a_span_is_named_for_its_target_and_nested_in_the_current_one(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.span("tools/call", "", tracing.SERVER) as outer:
        with tracing.span("tools/call", "add", tracing.CLIENT, {"gen_ai.tool.name": "add"}):
            pass
    found = by_name(spans)
    inner = found["tools/call add"]
    assert inner.kind is SpanKind.CLIENT
    assert inner.attributes == {"gen_ai.tool.name": "add"}
    assert inner.parent is not None
    assert inner.parent.span_id == outer.get_span_context().span_id
    assert found["tools/call"].kind is SpanKind.SERVER


def test_traceparent_round_trips_through_a_dict(spans: InMemorySpanExporter) -> None:
    headers: dict[str, str] = {}
    with tracing.span("publish", kind=tracing.CLIENT) as sender:
        tracing.inject(headers)
    sent = sender.get_span_context()
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", f"{sent.trace_id:032x}", f"{sent.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    with tracing.server_span("events.x process", headers, tracing.CONSUMER) as receiver:
        assert receiver.get_span_context().trace_id == sent.trace_id
    consumer = by_name(spans)["events.x process"]
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None and consumer.parent.is_remote
    assert consumer.parent.span_id == sent.span_id


def test_a_server_span_without_a_traceparent_starts_a_trace(spans: InMemorySpanExporter) -> None:
    with tracing.server_span("rpc.x process", {"X-Request-Id": "r1"}):
        pass
    assert by_name(spans)["rpc.x process"].parent is None


def test_while_a_span_is_current_the_logs_trace_id_is_its_trace_id(
    spans: InMemorySpanExporter,
) -> None:
    token = trace_id_var.set("before")
    try:
        with tracing.server_span("GET", {"traceparent": TRACEPARENT}) as current:
            assert trace_id_var.get() == "4bf92f3577b34da6a3ce929d0e0e4736"
            assert tracing.trace_id_of(current) == trace_id_var.get()
        assert trace_id_var.get() == "before"
    finally:
        trace_id_var.reset(token)


def test_an_exception_marks_the_span_failed_with_its_type(spans: InMemorySpanExporter) -> None:
    with pytest.raises(TimeoutError), tracing.span("slow"):
        raise TimeoutError("no answer")
    failed = by_name(spans)["slow"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "TimeoutError"


def test_an_error_type_set_inside_is_kept_when_the_exception_leaves(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(ValueError), tracing.span("call") as current:
        tracing.fail(current, "-32602", "Invalid params")
        raise ValueError("invalid")
    failed = by_name(spans)["call"]
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "-32602"
    assert failed.status.description == "Invalid params"


def test_a_zero_ratio_records_no_root_span_yet_keeps_a_trace_id() -> None:
    exporter = InMemorySpanExporter()
    settings = Settings.from_env({"SWITCHBOARD_TRACE_SAMPLE_RATIO": "0"})
    tracing.configure(settings, "test-1", SimpleSpanProcessor(exporter))
    try:
        headers: dict[str, str] = {}
        with tracing.span("work"):
            tracing.inject(headers)
            assert len(trace_id_var.get()) == 32
        assert exporter.get_finished_spans() == ()
        flags = headers["traceparent"].rsplit("-", 1)[1]
        assert not int(flags, 16) & 1  # not sampled: what follows downstream is not recorded
    finally:
        tracing.shutdown()


async def show_trace(request: Request) -> JSONResponse:
    return JSONResponse({"trace_id": trace_id_var.get()})


async def broken(request: Request) -> JSONResponse:
    raise RuntimeError("bug")


def app() -> RequestContextMiddleware:
    routes = [
        Route("/items/{id}", show_trace, methods=["GET"]),
        Route("/broken", broken, methods=["GET"]),
    ]
    return RequestContextMiddleware(
        Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS),
        service="test",
        max_body_bytes=1024,
        instance="t-1",
    )


async def test_a_request_span_is_named_by_its_route_template_and_continues_the_client_trace(
    spans: InMemorySpanExporter,
) -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        resp = await api.get("/items/42", headers={"traceparent": TRACEPARENT})
    assert resp.json() == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    span = by_name(spans)["GET /items/{id}"]
    assert span.kind is SpanKind.SERVER
    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["http.request.method"] == "GET"
    assert "42" not in str(dict(span.attributes))  # the raw path, with its id, is nowhere


async def test_a_request_answered_500_marks_its_span_failed(spans: InMemorySpanExporter) -> None:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        resp = await api.get("/broken")
    assert resp.status_code == 500
    span = by_name(spans)["GET /broken"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "500"
    assert span.parent is None


async def test_untraced_the_request_keeps_the_clients_trace_id_for_its_logs() -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        resp = await api.get("/items/42", headers={"traceparent": TRACEPARENT})
    assert resp.json() == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
