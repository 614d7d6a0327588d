"""An OTLP/HTTP trace receiver for tests: decodes what exporters POST to /v1/traces and keeps it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.devstack.harness import serving

PROTOBUF = "application/x-protobuf"
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, decoded: ids in hex as traceparent writes them."""

    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any]
    error: bool


@dataclass
class Receiver:
    """The spans received so far, and a way to wait for the ones a test expects."""

    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, request: ExportTraceServiceRequest) -> None:
        """Keep every span of one export."""
        for batch in request.resource_spans:
            resource = _attributes(batch.resource.attributes)
            for scope in batch.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=KINDS.get(span.kind, "unspecified"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            error=span.status.code == 2,  # STATUS_CODE_ERROR
                        )
                    )
        self._arrived.set()

    async def wait_for(
        self, found: Callable[[list[ReceivedSpan]], bool], timeout: float = 15
    ) -> list[ReceivedSpan]:
        """Wait until `found` holds for the spans received; they are returned."""
        async with asyncio.timeout(timeout):
            while not found(self.spans):
                self._arrived.clear()
                await self._arrived.wait()
        return self.spans

    def in_trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans of one trace."""
        return [s for s in self.spans if s.trace_id == trace_id]


def _attributes(pairs: Any) -> dict[str, Any]:
    """OTLP key-values as a dict of plain values."""
    out: dict[str, Any] = {}
    for pair in pairs:
        which = pair.value.WhichOneof("value")
        out[pair.key] = getattr(pair.value, which) if which else None
    return out


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver on a free port; `.url` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""
    receiver = Receiver()

    async def export(request: Request) -> Response:
        if request.headers.get("content-type", "") != PROTOBUF:
            return Response(status_code=415)
        decoded = ExportTraceServiceRequest()
        decoded.ParseFromString(await request.body())
        receiver.add(decoded)
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type=PROTOBUF)

    app = Starlette(routes=[Route("/v1/traces", export, methods=["POST"])])
    async with serving(app) as url:
        receiver.url = url
        yield receiver
