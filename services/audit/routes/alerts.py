"""Alert rules (CRUD) and alerts (`/api/v1/alerts/rules`, `/api/v1/alerts`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate
from libs.common.errors import Conflict, Forbidden, NotFound, Unprocessable
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import list_query, page_body
from services.audit import alerts, queries, schemas
from services.audit.context import context_of
from services.audit.store import alerts as store
from services.audit.store import servers as servers_store
from services.audit.visibility import admin_orgs, org_id, org_refs

STATES = ("firing", "resolved")


def managed_orgs(principal: Principal) -> tuple[str, ...] | None:
    """None for platform admins (every rule), else the orgs administered; 403 when none."""
    if principal.is_platform_admin:
        return None
    orgs = admin_orgs(principal)
    if not orgs:
        raise Forbidden("Only a platform admin or an org admin may manage alerts.")
    return orgs


def check_webhook_allowed(principal: Principal, webhook_url: str | None) -> None:
    """Only platform admins choose where alerts are POSTed.

    A URL is an outbound request the audit service makes, and an org admin must not aim it at
    internal addresses."""
    if webhook_url and not principal.is_platform_admin:
        raise Forbidden(
            "Only a platform admin may set a rule's webhook_url; org rules use the platform's.",
            details={"field": "webhook_url"},
        )


async def _rule(request: Request, conn: asyncpg.Connection) -> asyncpg.Record:
    """The rule of the path, if the caller manages it (404 otherwise)."""
    orgs = managed_orgs(await authenticate(request))
    ref = request.path_params["id"]
    row = await store.get_rule(conn, _uuid(ref)) if _uuid(ref) else None
    if row is None or (orgs is not None and row["org"] not in orgs):
        raise NotFound(f"No alert rule {ref!r}.", details={"id": ref})
    return row


async def list_rules(request: Request) -> Response:
    """The rules the caller manages."""
    orgs = managed_orgs(await authenticate(request))
    query = list_query(request, sorts=store.RULE_SORTS, filters=("kind", "server"))
    async with context_of(request).pool.acquire() as conn:
        rows, total = await store.list_rules(conn, orgs, query)
    return json_response(page_body([schemas.rule_out(r) for r in rows], total, query))


async def create_rule(request: Request) -> Response:
    """A new rule: platform-wide (platform admins) or for an org the caller administers."""
    principal = await authenticate(request)
    orgs = managed_orgs(principal)
    body = await parse_body(request, schemas.RuleIn)
    check_webhook_allowed(principal, body.webhook_url)
    fields = body.model_dump() | {"created_by": principal.id, "org_refs": []}
    if body.org is not None:
        fields["org"] = org_id(principal, body.org)
        fields["org_refs"] = sorted({body.org, *org_refs(principal, fields["org"])})
        known = set(principal.orgs) | set(principal.org_slugs.values())
        if orgs is not None and fields["org"] not in known:
            raise NotFound(f"Organisation {body.org!r} not found.", details={"org": body.org})
    if orgs is not None and (body.org is None or fields["org"] not in orgs):
        raise Forbidden("Org admins create rules for an org they administer (set org).")
    async with context_of(request).pool.acquire() as conn:
        await _require_server_of(conn, principal, fields.get("org"), body.server)
        try:
            row = await store.insert_rule(conn, fields)
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"A rule named {body.name!r} exists.", details={"name": body.name}
            ) from None
    return json_response(schemas.rule_out(row), status=201)


async def get_rule(request: Request) -> Response:
    """One rule."""
    async with context_of(request).pool.acquire() as conn:
        return json_response(schemas.rule_out(await _rule(request, conn)))


async def update_rule(request: Request) -> Response:
    """Change a rule's name, server, threshold, window, webhook or enabled flag."""
    async with context_of(request).pool.acquire() as conn:
        row = await _rule(request, conn)
        changes = (await parse_body(request, schemas.RulePatch)).model_dump(exclude_unset=True)
        check_webhook_allowed(await authenticate(request), changes.get("webhook_url"))
        merged = dict(row) | changes
        if "server" in changes:
            await _require_server_of(
                conn, await authenticate(request), row["org"], changes["server"]
            )
        try:
            schemas.check_rule(merged["kind"], merged["server"], merged["threshold"])
        except ValueError as exc:
            raise Unprocessable(
                "Invalid alert rule.", details={"fields": {"body": str(exc)}}
            ) from None
        if not changes:
            return json_response(schemas.rule_out(row))
        try:
            row = await store.update_rule(conn, row["id"], changes)
        except asyncpg.UniqueViolationError:
            name = changes.get("name")
            raise Conflict(f"A rule named {name!r} exists.", details={"name": name}) from None
    return json_response(schemas.rule_out(row))


async def delete_rule(request: Request) -> Response:
    """Delete a rule; its firing alert is resolved first, past alerts are kept."""
    async with context_of(request).pool.acquire() as conn:
        row = await _rule(request, conn)
        async with conn.transaction():
            current = (await store.firing_alerts(conn)).get(row["id"])
            if current is not None:
                await alerts.resolve(conn, current, datetime.now(UTC), None, "rule deleted")
            await store.delete_rule(conn, row["id"])
    return no_content()


async def list_alerts(request: Request) -> Response:
    """Firing and resolved alerts of the rules the caller manages (`state`, `server`, `since`)."""
    orgs = managed_orgs(await authenticate(request))
    query = list_query(request, sorts=store.ALERT_SORTS, default_sort="fired_at")
    params, problems = request.query_params, {}
    state = params.get("state") or params.get("status")
    if state and state not in STATES:
        problems["state"] = "must be firing or resolved"
    since, _ = queries.time_range(request, problems)
    rule = params.get("rule") or params.get("rule_id")
    if rule and not _uuid(rule):
        problems["rule"] = "must be a rule id"
    if problems:
        raise Unprocessable("Invalid alert query.", details={"fields": problems})
    filters = {"state": state, "server": params.get("server"), "since": since,
               "rule": _uuid(rule) if rule else None}  # fmt: skip
    async with context_of(request).pool.acquire() as conn:
        rows, total = await store.list_alerts(conn, orgs, filters, query)
    return json_response(page_body([schemas.alert_out(r) for r in rows], total, query))


async def _require_server_of(
    conn: asyncpg.Connection, principal: Principal, org: str | None, server: str | None
) -> None:
    """404 unless an org's rule names a server of that org; platform admins' rules may name any.

    Another org's server is not there for it (docs/TENANCY.md)."""
    if server is None or principal.is_platform_admin:
        return
    row = await servers_store.get_owner(conn, server)
    owner = org_id(principal, row["org"]) if row is not None and row["org"] else None
    if owner is None or owner != org:
        raise NotFound(f"Server {server!r} not found.", details={"server": server})


def _uuid(value: str) -> uuid.UUID | None:
    """`value` as a UUID, or None."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


routes = [
    Route("/api/v1/alerts", list_alerts, methods=["GET"]),
    Route("/api/v1/alerts/rules", list_rules, methods=["GET"]),
    Route("/api/v1/alerts/rules", create_rule, methods=["POST"]),
    Route("/api/v1/alerts/rules/{id}", get_rule, methods=["GET"]),
    Route("/api/v1/alerts/rules/{id}", update_rule, methods=["PATCH"]),
    Route("/api/v1/alerts/rules/{id}", delete_rule, methods=["DELETE"]),
]
