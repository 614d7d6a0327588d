"""Import: validate every server first, then write all of them in one transaction (or none)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from libs.common.authn import Principal
from libs.common.errors import ApiError, Conflict, Forbidden, NotFound, Unprocessable
from libs.common.http import validate
from services.registry import orgs, permissions, refresh, servers
from services.registry.context import Registry
from services.registry.schemas import ServerCreate, ServerUpdate
from services.registry.store import servers as servers_store

REFRESH_CONCURRENCY = 8


async def _check(reg: Registry, conn: asyncpg.Connection, item: dict[str, Any]) -> Any:
    """A validated ServerCreate, or raises Unprocessable with field details."""
    if "_error" in item:
        raise Unprocessable("invalid", details={"fields": {"config": item["_error"]}})
    body = validate(ServerCreate, item)
    problems = servers.shape_problems(body.transport, body.model_dump(exclude_unset=True))
    if problems:
        raise Unprocessable("invalid", details={"fields": problems})
    await servers.check_url(reg, conn, body.url)
    return body


async def run(
    reg: Registry,
    principal: Principal,
    items: list[dict[str, Any]],
    *,
    fmt: str,
    dry_run: bool,
    on_conflict: str,
    lenient: bool = False,
) -> dict[str, Any]:
    """Plan the import; unless dry-run, apply it all-or-nothing (`lenient`: skip invalid ones)."""
    org = await orgs.creation_org(reg, principal, None)
    report: dict[str, Any] = {
        "format": fmt,
        "dry_run": dry_run,
        "created": [],
        "updated": [],
        "skipped": [],
        "conflicts": [],
        "errors": {},
    }
    plan: list[tuple[str, Any, Any]] = []  # (action, body, existing)
    seen: set[str] = set()
    async with reg.pool.acquire() as conn:
        for item in items:
            name = str(item.get("name"))
            if name in seen:
                report["errors"][name] = {"name": "appears twice in the document"}
                continue
            seen.add(name)
            try:
                body = await _check(reg, conn, item)
                owner = await orgs.creation_org(reg, principal, body.org) if body.org else org
            except Unprocessable as exc:
                report["errors"][name] = exc.details.get("fields", {})
                continue
            except (NotFound, Forbidden):
                report["errors"][name] = {"org": "not an org you may register servers in"}
                continue
            existing = await servers_store.get_server(conn, body.name)
            if existing is None:
                plan.append(("create", body, owner))
                report["created"].append(body.name)
            elif on_conflict == "overwrite" and permissions.can(principal, "write", existing):
                plan.append(("update", body, existing))
                report["updated"].append(body.name)
            elif on_conflict == "skip":
                report["skipped"].append(body.name)
            else:
                report["conflicts"].append({"server": body.name, "reason": "exists"})
    if dry_run:
        return report
    if report["errors"] and not lenient:
        raise Unprocessable(
            "Some servers are invalid; nothing was imported.", details={"servers": report["errors"]}
        )
    if report["conflicts"]:
        raise Conflict(
            "Some servers exist already; nothing was imported.",
            details={"conflicts": report["conflicts"]},
        )
    written = await _apply(reg, principal, plan)
    await _refresh_all(reg, written)
    return report


async def _apply(reg: Registry, principal: Principal, plan: list[tuple[str, Any, Any]]) -> list:
    """Write the plan in one transaction (a create's third part is its org)."""
    written: list[Any] = []
    async with reg.pool.acquire() as conn, conn.transaction():
        for action, body, other in plan:
            if action == "create":
                server = await servers.create(reg, conn, body, other, principal.id)
            else:
                fields = body.model_dump(exclude_unset=True, exclude={"name", "org"})
                if "trusted" in fields:
                    permissions.require_trust(principal, other)
                server, _ = await servers.update(
                    reg,
                    conn,
                    other,
                    ServerUpdate.model_validate(fields),
                    principal.id,
                    keep_secrets=permissions.holds_secrets(principal, other),
                )
            written.append(server)
    return written


async def _refresh_all(reg: Registry, written: list[Any]) -> None:
    """Discover the imported servers, a few at a time; failures only set their status."""
    limit = asyncio.Semaphore(REFRESH_CONCURRENCY)

    async def one(server: Any) -> None:
        async with limit:
            try:
                await refresh.refresh(reg, server["id"])
            except ApiError:
                pass

    await asyncio.gather(*(one(s) for s in written if s["enabled"]))
