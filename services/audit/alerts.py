"""Alert rules evaluated periodically: firing and resolved alerts, their events and webhooks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog

from libs.common import outbox
from libs.common.events import ALERT_FIRED, ALERT_RESOLVED, AlertChanged, Event
from libs.common.outbound import Guard, read_capped
from services.audit.monitoring import HEALTHY
from services.audit.schemas import iso
from services.audit.store import alerts as store

log = structlog.get_logger()

KINDS = ("error_rate", "latency_p95", "server_unhealthy")
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_ATTEMPTS = 3
WEBHOOK_ANSWER_BYTES = 64 * 1024  # what a receiver's answer may hold; it is not used


@dataclass(frozen=True)
class Reading:
    """What a rule measured: the value (None: no data) and whether it breaches the rule."""

    value: float | None
    breached: bool
    message: str


@dataclass(frozen=True)
class Notification:
    """An alert event to POST to a webhook once its transaction has committed."""

    url: str
    alert_id: Any
    event: Event


async def measure(conn: asyncpg.Connection, rule: asyncpg.Record, now: datetime) -> Reading:
    """Evaluate one rule's condition now."""
    refs = list(rule["org_refs"]) if rule["org"] is not None else None
    server, threshold, minutes = rule["server"], rule["threshold"], rule["window_minutes"]
    where = f"server {server}" if server else "all servers"
    since = now - timedelta(minutes=minutes)
    if rule["kind"] == "error_rate":
        calls, errors = await store.error_rate(conn, since, server, refs)
        rate = errors / calls if calls else None
        text = f"error rate {rate:.1%} of {calls} calls on {where}" if rate is not None else ""
        return Reading(rate, rate is not None and rate > threshold, text)
    if rule["kind"] == "latency_p95":
        p95 = await store.latency_p95(conn, since, server, refs)
        text = f"p95 latency {p95:.0f} ms on {where}" if p95 is not None else ""
        return Reading(p95, p95 is not None and p95 > threshold, text)
    row = await store.server_status(conn, server, refs)
    if row is None or row["status"] in HEALTHY:
        return Reading(0.0, False, f"server {server} is {row['status'] if row else 'unknown'}")
    down = (now - row["since"]).total_seconds() / 60
    text = f"server {server} {row['status']} for {down:.1f} min"
    return Reading(round(down, 3), down >= minutes, text)


def payload(alert: asyncpg.Record) -> AlertChanged:
    """The event payload of an alert row."""
    return AlertChanged(
        alert_id=str(alert["id"]),
        rule_id=str(alert["rule_id"]) if alert["rule_id"] else "",
        rule=alert["rule_name"],
        kind=alert["kind"],
        status=alert["status"],
        message=alert["message"],
        fired_at=iso(alert["fired_at"]),
        server=alert["server"],
        org=alert["org"],
        value=alert["value"],
        threshold=alert["threshold"],
        window_minutes=alert["window_minutes"],
        resolved_at=iso(alert["resolved_at"]),
    )


async def resolve(
    conn: asyncpg.Connection, alert: asyncpg.Record, now: datetime, value: float | None, why: str
) -> Event:
    """Resolve a firing alert and enqueue `audit.alert.resolved` in the same transaction."""
    row = await store.resolve_alert(conn, alert["id"], now, value, why)
    event = ALERT_RESOLVED.event(payload(row), source="audit", org=row["org"])
    await outbox.enqueue(conn, "audit", event)
    return event


async def evaluate_once(pool: asyncpg.Pool, default_webhook: str) -> list[Notification]:
    """Evaluate every rule once (one replica at a time); the webhooks to call after commit."""
    now = datetime.now(UTC)
    out: list[Notification] = []
    async with pool.acquire() as conn, conn.transaction():
        if not await store.try_evaluation_lock(conn):
            return out
        firing = await store.firing_alerts(conn)
        for rule in await store.all_rules(conn):
            url = rule["webhook_url"] or default_webhook
            current = firing.get(rule["id"])
            if not rule["enabled"]:
                if current is not None:
                    event = await resolve(conn, current, now, None, "rule disabled")
                    out += [Notification(url, current["id"], event)] if url else []
                continue
            reading = await measure(conn, rule, now)
            if reading.breached and current is None:
                row = await store.insert_alert(
                    conn,
                    {
                        "rule_id": rule["id"],
                        "rule_name": rule["name"],
                        "kind": rule["kind"],
                        "server": rule["server"],
                        "org": rule["org"],
                        "value": reading.value,
                        "threshold": rule["threshold"],
                        "window_minutes": rule["window_minutes"],
                        "message": reading.message,
                        "fired_at": now,
                    },
                )
                event = ALERT_FIRED.event(payload(row), source="audit", org=row["org"])
                await outbox.enqueue(conn, "audit", event)
                out += [Notification(url, row["id"], event)] if url else []
                log.info("alert_fired", rule=rule["name"], value=reading.value)
            elif not reading.breached and current is not None:
                event = await resolve(conn, current, now, reading.value, reading.message or "ok")
                out += [Notification(url, current["id"], event)] if url else []
                log.info("alert_resolved", rule=rule["name"], value=reading.value)
    return out


async def post_webhook(http: aiohttp.ClientSession, pool: asyncpg.Pool, note: Notification) -> None:
    """POST an alert event to its webhook (a few attempts); remember how it went.

    `http` is the outbound guard's session: an address the SSRF rules refuse, or a redirect, is
    a failed attempt like any other."""
    body = {"type": note.event.type, "id": note.event.id, "time": note.event.time,
            "alert": note.event.data}  # fmt: skip
    status = "failed"
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            async with http.post(note.url, json=body) as resp:
                await read_capped(resp, WEBHOOK_ANSWER_BYTES)
            status = f"{note.event.type.rsplit('.', 1)[-1]}: {resp.status}"
            if resp.status < 500:
                break
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = f"{note.event.type.rsplit('.', 1)[-1]}: {type(exc).__name__}"
            log.warning("alert_webhook_failed", alert=str(note.alert_id), error=str(exc))
        await asyncio.sleep(0.5 * (attempt + 1))
    async with pool.acquire() as conn:
        await store.set_webhook_status(conn, note.alert_id, status)


async def run_forever(
    pool: asyncpg.Pool, interval_s: float, default_webhook: str, guard: Guard
) -> None:
    """Evaluate the rules every `interval_s`.

    Webhooks are posted without holding the loop, through the outbound guard."""
    pending: set[asyncio.Task] = set()
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
    async with guard.session(timeout=timeout) as http:
        try:
            while True:
                try:
                    for note in await evaluate_once(pool, default_webhook):
                        task = asyncio.create_task(post_webhook(http, pool, note))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("alert_evaluation_failed", error=str(exc))
                await asyncio.sleep(interval_s)
        finally:
            for task in pending:
                task.cancel()
