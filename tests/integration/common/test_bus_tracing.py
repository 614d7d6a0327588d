"""Trace context over NATS: publish → consumer, request → server, send; nothing when untraced."""

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from nats.aio.msg import Msg
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.common import tracing
from libs.common.bus import Bus
from libs.common.events import Event, EventType
from libs.common.log import trace_id_var
from tests.integration.common.demo_app import DemoSettings


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, its finished spans kept in memory."""
    exporter = InMemorySpanExporter()
    tracing.configure(DemoSettings(), "test-1", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The one finished span called `name`."""
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


async def test_a_consumer_handles_an_event_in_a_span_continuing_the_publishers_trace(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    kind = f"demo.traced{secrets.token_hex(2)}.made"
    seen: list[tuple[Event, str]] = []
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append((event, trace_id_var.get()))
        done.set()

    bus.consume(f"demo-traced-{secrets.token_hex(2)}", [f"events.{kind}"], handler)
    with tracing.span("tools/call", "add", tracing.SERVER) as publisher:
        await bus.publish(EventType(kind, dict).event({}, source="demo"))
    async with asyncio.timeout(10):
        await done.wait()
    trace_id = tracing.trace_id_of(publisher)
    consumer = named(spans, f"events.{kind} process")
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None
    assert consumer.parent.span_id == publisher.get_span_context().span_id
    assert consumer.attributes == {
        "messaging.system": "nats",
        "messaging.destination.name": f"events.{kind}",  # without the test's namespace
        "messaging.operation.type": "process",
    }
    ((received, logged),) = seen
    assert received.trace_id == logged == trace_id  # the envelope and the consumer's logs agree


async def test_each_event_of_a_batch_gets_its_span_in_its_publishers_trace(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    kind = f"demo.batched{secrets.token_hex(2)}.made"
    publishers = []
    for n in range(2):
        with tracing.span("tools/call", f"t{n}", tracing.SERVER) as publisher:
            await bus.publish(EventType(kind, dict).event({"n": n}, source="demo"))
        publishers.append(publisher)
    alone: list[str] = []
    done = asyncio.Event()

    async def handler(events: list[Event]) -> None:
        raise RuntimeError("the batch fails: each event is handled alone, in its own span")

    async def one(event: Event) -> None:
        alone.append(trace_id_var.get())
        if len(alone) == 2:
            done.set()

    bus.consume_batches(f"demo-batched-{secrets.token_hex(2)}", [f"events.{kind}"], handler, one)
    async with asyncio.timeout(10):
        await done.wait()
    found = [s for s in spans.get_finished_spans() if s.name == f"events.{kind} process"]
    async with asyncio.timeout(5):
        while len(found) < 2:  # ended once the batch is settled
            await asyncio.sleep(0.01)
            found = [s for s in spans.get_finished_spans() if s.name == f"events.{kind} process"]
    assert [s.kind for s in found] == [SpanKind.CONSUMER] * 2
    parents = {s.parent.span_id for s in found if s.parent is not None}
    assert parents == {p.get_span_context().span_id for p in publishers}
    assert alone == [tracing.trace_id_of(p) for p in publishers]


async def test_an_rpc_is_served_in_a_span_that_is_the_child_of_the_callers(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    name = f"rpc.demo.traced{secrets.token_hex(2)}"
    inside: list[str] = []

    async def handler(data: dict[str, Any]) -> dict[str, Any]:
        inside.append(trace_id_var.get())
        return data

    await bus.serve(name, handler)
    with tracing.span("tools/call", "echo", tracing.CLIENT) as caller:
        assert await bus.request(name, {"n": 1}) == {"n": 1}
    server = named(spans, f"{name} process")
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None
    assert server.parent.span_id == caller.get_span_context().span_id
    assert inside == [tracing.trace_id_of(caller)]


async def test_a_core_message_carries_the_current_span_only_while_traced(bus: Bus) -> None:
    name = f"live.demo.traced{secrets.token_hex(2)}"
    received: asyncio.Queue[Msg] = asyncio.Queue()
    await bus.listen(name, received.put)
    await bus.send(name, b"untraced", {"X-Kind": "plain"})
    async with asyncio.timeout(5):
        plain = await received.get()
    assert "traceparent" not in (plain.headers or {})

    exporter = InMemorySpanExporter()
    tracing.configure(DemoSettings(), "test-1", SimpleSpanProcessor(exporter))
    try:
        with tracing.span("work") as current:
            await bus.send(name, b"traced", {"X-Kind": "plain"})
        async with asyncio.timeout(5):
            traced = await received.get()
    finally:
        tracing.shutdown()
    assert traced.headers is not None and traced.headers["X-Kind"] == "plain"
    assert tracing.trace_id_of(current) in traced.headers["traceparent"]


async def test_untraced_an_rpc_keeps_its_request_and_trace_ids_and_adds_no_traceparent(
    bus: Bus,
) -> None:
    name = f"rpc.demo.plain{secrets.token_hex(2)}"
    raw: asyncio.Queue[Msg] = asyncio.Queue()

    async def answer(msg: Msg) -> None:
        await raw.put(msg)
        await msg.respond(b'{"ok": true, "data": null}')

    await bus.listen(name, answer)
    token = trace_id_var.set("a" * 32)
    try:
        await bus.request(name, {})
    finally:
        trace_id_var.reset(token)
    async with asyncio.timeout(5):
        msg = await raw.get()
    assert msg.headers is not None
    assert msg.headers["X-Trace-Id"] == "a" * 32
    assert "traceparent" not in msg.headers
