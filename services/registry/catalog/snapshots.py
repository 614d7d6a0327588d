"""Operations behind the snapshot routes: a version's latest snapshot, controls, scores, rescan."""

from __future__ import annotations

from typing import Any

from libs.common.authn import require_org_role, require_platform_admin
from libs.common.errors import NotFound
from libs.common.principal import Principal
from services.registry import plans
from services.registry.catalog import access, scans
from services.registry.context import Registry
from services.registry.store import snapshots as store

SNAPSHOT_FIELDS = (
    "global_score", "security_score", "supply_chain_score", "maturity_score", "grade",
    "toolchain_version", "scoring_version", "controls_catalog_version", "total_findings",
    "critical_findings", "high_findings", "medium_findings", "low_findings", "duration_ms",
    "isolation", "scanned_by", "created_at",
)  # fmt: skip
CONTROL_FIELDS = ("control_id", "control_name", "control_category", "passed", "severity",
                  "message", "findings", "evidence")  # fmt: skip


async def latest(
    reg: Registry, principal: Principal | None, mcp_ref: str, version_ref: str
) -> tuple[Any, Any, Any]:
    """(mcp, version, snapshot) of a readable version; NotFound when it has no snapshot yet."""
    async with reg.pool.acquire() as conn:
        mcp, version = await access.readable_version(conn, principal, mcp_ref, version_ref)
        snapshot = await store.latest_snapshot(conn, version["id"])
        controls = await store.controls_of(conn, snapshot["id"]) if snapshot else []
    if snapshot is None:
        raise NotFound(
            "This version has no snapshot yet.",
            details={
                "version": str(version["id"]),
                "status": version["status"],
                "status_error": version["status_error"],
            },  # fmt: skip
        )
    return version, snapshot, controls


def snapshot_view(version: Any, snapshot: Any) -> dict[str, Any]:
    """The seed's snapshot fields, and the tools the scan found."""
    return {
        "id": str(snapshot["id"]),
        "version_id": str(snapshot["version_id"]),
        **{name: snapshot[name] for name in SNAPSHOT_FIELDS},
        "status": version["status"],
        "tools": [
            {k: t.get(k) for k in ("name", "description", "description_sha256", "fingerprint")}
            for t in snapshot["tools"] or []
        ],
    }


def controls_view(controls: list[Any]) -> dict[str, Any]:
    """{"controls": [...], "total", "passed", "failed"}."""
    items = [{"id": str(c["id"]), **{k: c[k] for k in CONTROL_FIELDS}} for c in controls]
    passed = sum(1 for c in items if c["passed"])
    return {"controls": items, "total": len(items), "passed": passed, "failed": len(items) - passed}


def scores_view(snapshot: Any) -> dict[str, Any]:
    """The seed's scores body: weights and breakdowns, grade, toolchain and scoring versions."""
    return {
        "snapshot_id": str(snapshot["id"]),
        "global_score": snapshot["global_score"],
        "scores": snapshot["scores"],
        "grade": snapshot["grade"],
        "toolchain_version": snapshot["toolchain_version"],
        "scoring_version": snapshot["scoring_version"],
        "controls_catalog_version": snapshot["controls_catalog_version"],
    }


async def rescan(
    reg: Registry, principal: Principal, mcp_ref: str, version_ref: str
) -> dict[str, Any]:
    """Queue a new scan: the MCP's org admin, or a platform admin for a platform entry."""
    async with reg.pool.acquire() as conn, conn.transaction():
        mcp, version = await access.readable_version(conn, principal, mcp_ref, version_ref)
        if mcp["org"] is None:
            require_platform_admin(principal)
        else:
            require_org_role(principal, mcp["org"], "admin")
            await plans.require_capacity(reg, conn, str(mcp["org"]), "scans")
        event = await scans.request_scan(reg, conn, mcp, version, principal.id, "rescan")
    return {"version_id": str(version["id"]), "status": "PENDING", "request_id": event.id}
