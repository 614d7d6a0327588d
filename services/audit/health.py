"""The platform's health, computed from the replicas' heartbeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

PLATFORM_SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")
MISSED_BEATS = 3
REGISTRY_FIGURES = ("servers_count", "total_tools", "exposure_mode")
HOST_FIGURES = ("cpu_percent", "memory_used_mb", "memory_total_mb", "memory_percent")


def instance_status(row: asyncpg.Record) -> str:
    """`up` unless stopped or silent for three heartbeat intervals."""
    if row["stopped_at"] is not None:
        return "down"
    silent = (row["now"] - row["last_heartbeat"]).total_seconds()
    return "up" if silent <= MISSED_BEATS * row["interval_s"] else "down"


def platform_health(rows: Sequence[asyncpg.Record]) -> dict[str, Any]:
    """Every platform service with its replicas; `ok` only when each has a replica up."""
    services = []
    for name in PLATFORM_SERVICES:
        instances = [
            {
                "instance": r["instance"],
                "status": instance_status(r),
                "version": r["version"],
                "uptime_s": round((r["now"] - r["started_at"]).total_seconds(), 1),
                "last_heartbeat": r["last_heartbeat"].isoformat().replace("+00:00", "Z"),
            }
            for r in rows
            if r["service"] == name
        ]
        up = any(i["status"] == "up" for i in instances)
        versions = sorted({i["version"] for i in instances if i["status"] == "up"})
        services.append(
            {
                "service": name,
                "status": "up" if up else "down",
                "version": versions[-1] if versions else None,
                "instances": instances,
            }
        )
    overall = "ok" if all(s["status"] == "up" for s in services) else "degraded"
    return {"status": overall, "name": "Switchboard", **seed_figures(rows), "services": services}


def seed_figures(rows: Sequence[asyncpg.Record]) -> dict[str, Any]:
    """The mcphubs seed's health figures from the newest heartbeats that carry them.

    `servers_count`, `total_tools`, `exposure_mode` from the registry; `cpu_percent` and the
    memory figures of the machine of the replica heard from last (None until one reported)."""
    up = sorted(
        (r for r in rows if r["stats"] and instance_status(r) == "up"),
        key=lambda r: r["last_heartbeat"],
        reverse=True,
    )
    registry = next((r["stats"] for r in up if r["service"] == "registry"), {})
    host = next((r["stats"] for r in up if "memory_total_mb" in r["stats"]), {})
    out: dict[str, Any] = {k: registry.get(k) for k in REGISTRY_FIGURES}
    out.update({k: host.get(k) for k in HOST_FIGURES})
    return out
