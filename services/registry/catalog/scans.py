"""The scan work queue: SCAN_REQUESTED → the sandbox scans → snapshot, controls, VERSION_SCANNED.

`registry-scans` is one durable pull consumer shared by every registry replica (a work queue: each
request goes to one of them), fetching one request at a time with an ack wait longer than a scan
with all its retries, so a long scan is not redelivered meanwhile. A version moves PENDING →
SCANNING → CERTIFIED (a snapshot was stored) | FAILED (the archive or a limit refused it;
status_error says why) | ERROR (the sandbox could not run it after REGISTRY_SCAN_ATTEMPTS tries).

Idempotence: a snapshot records the request's envelope id (`request_id`); a redelivered request
whose snapshot exists is acked without scanning again. A redelivered request that ended FAILED or
ERROR is scanned again (the result is the same for the same source; nothing is stored twice).
A rescan is a new request (a new envelope id), so it stores a new snapshot.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter, Histogram

from libs.common import rpc_types, subjects
from libs.common.app import instance_id
from libs.common.errors import NotFound, ValidationError
from libs.common.events import (
    SCAN_REQUESTED,
    VERSION_SCANNED,
    Event,
    PayloadError,
    ScanRequested,
    VersionChanged,
)
from libs.common.rpc_types import ScanReply, ScanRequest, SourceChunk, SourceRequest
from services.registry import certification, review
from services.registry.context import SCHEMA, Registry
from services.registry.store import snapshots as store

log = structlog.get_logger()

DURABLE = "registry-scans"
RETRY_BASE_S = 1.0

SCANS = Counter(
    "switchboard_registry_scans_total",
    "Catalog version scans by outcome (certified, failed, error, duplicate).",
    ["outcome"],
)
SCAN_SECONDS = Histogram(
    "switchboard_registry_scan_duration_seconds",
    "Time from taking a scan request to storing its result, by outcome.",
    ["outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)


def _version_id(payload: ScanRequested) -> uuid.UUID:
    """The request's version id (PayloadError when it is not a UUID: redelivery cannot help)."""
    try:
        return uuid.UUID(payload.version_id)
    except ValueError:
        raise PayloadError(f"version_id {payload.version_id!r} is not a UUID") from None


async def request_scan(
    reg: Registry, conn: asyncpg.Connection, mcp: Any, version: Any, actor: str | None, reason: str
) -> Event:
    """Queue a scan of the version (in the caller's transaction): status back to PENDING."""
    await store.set_status(conn, version["id"], "PENDING", None)
    event = SCAN_REQUESTED.event(
        ScanRequested(version_id=str(version["id"]), reason=reason),
        source=SCHEMA,
        actor=actor,
        org=mcp["org"],
    )
    await reg.emit(conn, event)
    return event


async def _scan(reg: Registry, version_id: uuid.UUID) -> ScanReply:
    """Ask the sandbox, retrying errors; the last error becomes an `error` reply."""
    settings = reg.settings
    last = "the sandbox did not answer"
    for attempt in range(max(settings.scan_attempts, 1)):
        if attempt:
            await asyncio.sleep(RETRY_BASE_S * 2 ** (attempt - 1))
        try:
            reply = await reg.bus.call(
                rpc_types.SANDBOX_SCAN,
                ScanRequest(version_id=str(version_id), timeout_s=settings.scan_timeout_s),
                timeout=settings.scan_timeout_s + 30,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no responder, timeout, remote failure: try again
            last = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("scan_attempt_failed", version_id=str(version_id), error=last)
            continue
        if reply.outcome in ("scanned", "refused"):
            return reply
        last = reply.reason or "the scan failed"
        log.warning("scan_attempt_failed", version_id=str(version_id), error=last)
    return ScanReply(outcome="error", reason=last)


def snapshot_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools found, with the review fingerprint of those a manifest defined whole."""
    out = []
    for tool in tools:
        definition = tool.get("definition")
        out.append(
            {
                "name": tool.get("name"),
                "description": tool.get("description") or "",
                "description_sha256": tool.get("description_sha256"),
                "source": tool.get("source"),
                "fingerprint": review.fingerprint(definition) if definition else None,
                "definition": definition,
            }
        )
    return out


async def _store(
    reg: Registry, event: Event, version_id: uuid.UUID, reply: ScanReply
) -> tuple[str, Any]:
    """Store the outcome and publish VERSION_SCANNED in one transaction; (outcome, snapshot)."""
    async with reg.pool.acquire() as conn, conn.transaction():
        version = await store.lock_version(conn, version_id)
        if version is None:
            return "gone", None
        if await store.snapshot_of_request(conn, event.id) is not None:
            return "duplicate", None
        snapshot = None
        if reply.outcome == "scanned" and reply.report is not None:
            report = reply.report
            snapshot = await store.insert_snapshot(
                conn,
                version_id,
                report,
                snapshot_tools(report.get("tools") or []),
                reply.duration_ms,
                event.id,
                reply.isolation,
                instance_id(reg.settings),
            )
            await store.insert_controls(conn, snapshot["id"], report.get("controls") or [])
            if report.get("license"):
                await store.fill_license(conn, version["mcp_id"], report["license"])
            # the servers running this version are judged on the new snapshot (gateways refetch)
            await certification.announce(reg, conn, version_id)
            status, error = "CERTIFIED", None
        elif reply.outcome == "refused":
            status, error = "FAILED", reply.reason or "the source was refused"
        else:
            status, error = "ERROR", reply.reason or "the scan could not run"
        await store.set_status(conn, version_id, status, error)
        payload = VersionChanged(
            mcp_id=str(version["mcp_id"]),
            version_id=str(version_id),
            visible_version=version["visible_version"],
            status=status,
            snapshot_id=str(snapshot["id"]) if snapshot else None,
            global_score=snapshot["global_score"] if snapshot else None,
            grade=snapshot["grade"] if snapshot else None,
        )
        await reg.emit(conn, VERSION_SCANNED.event(payload, source=SCHEMA, actor=event.actor,
                                                   org=event.org))  # fmt: skip
    return status.lower(), snapshot


async def on_scan_requested(reg: Registry, event: Event) -> None:
    """Scan the version the request names and store the result (idempotent by envelope id)."""
    payload = SCAN_REQUESTED.decode(event)
    version_id = _version_id(payload)
    started = time.perf_counter()
    async with reg.pool.acquire() as conn, conn.transaction():
        if await store.snapshot_of_request(conn, event.id) is not None:
            SCANS.labels("duplicate").inc()
            return
        if await store.lock_version(conn, version_id) is None:
            log.info("scan_version_gone", version_id=str(version_id))
            return
        await store.set_status(conn, version_id, "SCANNING", None)
    reply = await _scan(reg, version_id)
    outcome, _ = await _store(reg, event, version_id, reply)
    SCANS.labels(outcome).inc()
    SCAN_SECONDS.labels(outcome).observe(time.perf_counter() - started)
    log.info("scan_done", version_id=str(version_id), outcome=outcome, reason=reply.reason)


def ack_wait_s(reg: Registry) -> float:
    """Longer than a scan with every retry: a request in progress is not redelivered."""
    s = reg.settings
    attempts = max(s.scan_attempts, 1)
    return attempts * (s.scan_timeout_s + 30) + RETRY_BASE_S * 2**attempts + 60


@asynccontextmanager
async def running(reg: Registry) -> AsyncIterator[None]:
    """Consume scan requests (one at a time per replica) and serve rpc.registry.source."""

    async def handler(event: Event) -> None:
        await on_scan_requested(reg, event)

    async def source(request: SourceRequest) -> SourceChunk:
        return await read_source(reg, request)

    await reg.bus.answer(rpc_types.REGISTRY_SOURCE, source, queue="registry")
    reg.bus.consume(DURABLE, [subjects.SCAN_REQUESTS], handler, batch=1, ack_wait_s=ack_wait_s(reg))
    yield


async def read_source(reg: Registry, request: SourceRequest) -> SourceChunk:
    """One chunk (≤ 512 KiB) of a version's tarball; the SHA-256 comes with the first (offset 0)."""
    if request.offset < 0 or request.length <= 0:
        raise ValidationError("offset must be >= 0 and length > 0.", details={"field": "offset"})
    try:
        version_id = uuid.UUID(request.version_id)
    except ValueError:
        why = "version_id must be a UUID."
        raise ValidationError(why, details={"field": "version_id"}) from None
    length = min(request.length, rpc_types.SOURCE_CHUNK_MAX)
    async with reg.pool.acquire() as conn:
        first = request.offset == 0
        row = await store.source_chunk(conn, version_id, request.offset, length, first)
    if row is None:
        raise NotFound("No source for this version.", details={"version_id": request.version_id})
    return SourceChunk(
        data=base64.b64encode(row["data"] or b"").decode(),
        offset=request.offset,
        size=row["size"],
        sha256=row["sha256"] or "",
    )
