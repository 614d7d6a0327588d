"""Org policies and approvals: who may read and change them, their events, and CI evaluation.

Verdicts come from libs/common/policy.py, the evaluator the gateway uses too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.common import events as ev
from libs.common import policy
from libs.common.authn import Principal
from libs.common.errors import Conflict, Forbidden, NotFound, Unprocessable
from libs.common.policy import Rule
from libs.common.rpc_types import OrgPolicies
from services.registry import orgs
from services.registry.certification import certification_of
from services.registry.context import SCHEMA, Registry
from services.registry.schemas import ApprovalIn, CiEvaluate, PolicyFields
from services.registry.store import policies as store
from services.registry.store import servers as servers_store

SCOPES = {"viewer": "read", "member": "read", "admin": "admin", "owner": "admin"}


def _slug_of(principal: Principal, org: str) -> str | None:
    """The slug the principal knows `org` by."""
    return next((slug for slug, oid in principal.org_slugs.items() if oid == org), None)


async def _resolve(reg: Registry, principal: Principal, ref: str) -> str | None:
    """The org's id; None when a platform admin names an org that does not exist."""
    org = await orgs.org_id(reg, principal, ref)
    if principal.is_platform_admin and org not in principal.orgs:
        found = await orgs.lookup(reg, org)
        return found.id if found is not None and found.status != "deleted" else None
    return org


def _sees(principal: Principal, org: str) -> bool:
    """True when the org is the caller's (a member, its token, or a platform admin)."""
    return principal.role_in(org) is not None or principal.org == org


def _holds(principal: Principal, org: str, minimum: str) -> bool:
    """True when the caller has `minimum` role in `org`; a service token, the matching scope."""
    if principal.has_org_role(org, minimum):
        return True
    if principal.kind != "service_token" or principal.org != org:
        return False
    return principal.has_scope(f"{SCOPES[minimum]}:org:{_slug_of(principal, org)}")


async def org_for(reg: Registry, principal: Principal, ref: str | None, minimum: str) -> str:
    """The org (id) a policy request names (None: the caller's own).

    404 when it is not the caller's (as if it did not exist), 403 without the role."""
    ref = ref or principal.org
    if ref is None:
        raise NotFound("The caller belongs to no organisation.", details={"org": None})
    org = await _resolve(reg, principal, ref)
    if org is None or not _sees(principal, org):
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    if not _holds(principal, org, minimum):
        raise Forbidden(f"Changing policies needs the {minimum} role.", details={"org": ref})
    return org


def policy_out(row: asyncpg.Record) -> dict[str, Any]:
    """A policy as the API shows it."""
    return {
        "id": str(row["id"]),
        "org_id": row["org"],
        "name": row["name"],
        "description": row["description"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_value": row["target_value"],
        "priority": row["priority"],
        "enabled": row["enabled"],
        "version": row["version"],
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def approval_out(row: asyncpg.Record) -> dict[str, Any]:
    """An approval as the API shows it."""
    return {
        "org_id": row["org"],
        "mcp": row["mcp"],
        "mcp_id": str(row["mcp_id"]),
        "version": row["visible_version"],
        "version_id": str(row["version_id"]),
        "approved_by": row["approved_by"],
        "reason": row["reason"],
        "created_at": row["created_at"].isoformat(),
    }


def rule_of(row: asyncpg.Record) -> Rule:
    """The evaluator's form of a stored policy."""
    return Rule(
        id=str(row["id"]),
        name=row["name"],
        action=row["action"],
        target_type=row["target_type"],
        target_value=row["target_value"],
        priority=row["priority"],
        enabled=row["enabled"],
    )


def _check(fields: dict[str, Any]) -> None:
    """422 when the target value does not fit the target type."""
    problem = policy.target_problem(fields["target_type"], fields["target_value"])
    if problem:
        raise Unprocessable("The policy is invalid.", details={"fields": {"target_value": problem}})


async def _emit(
    reg: Registry, conn: asyncpg.Connection, kind: ev.EventType, org: str, row: Any, actor: str
) -> None:
    """Enqueue a POLICY_* event (the org on the envelope) in the caller's transaction."""
    payload = ev.PolicyChanged(str(row["id"]), row["name"], row["version"])
    await reg.emit(conn, kind.event(payload, source=SCHEMA, actor=actor, org=org))


def _taken(name: str | None) -> Conflict:
    """409: the org has a policy of that name."""
    return Conflict(f"A policy named {name!r} already exists.", details={"name": name})


async def create(
    reg: Registry, conn: asyncpg.Connection, org: str, body: PolicyFields, actor: str
) -> asyncpg.Record:
    """Insert a policy and POLICY_CREATED."""
    fields = body.model_dump()
    _check(fields)
    try:
        async with conn.transaction():
            row = await store.insert_policy(conn, org, fields, actor)
    except asyncpg.UniqueViolationError:
        raise _taken(fields["name"]) from None
    await _emit(reg, conn, ev.POLICY_CREATED, org, row, actor)
    return row


async def get_or_404(conn: asyncpg.Connection, org: str, policy_id: str) -> asyncpg.Record:
    """An org's policy, or 404 (another org's answers the same)."""
    row = await store.get_policy(conn, org, policy_id)
    if row is None:
        raise NotFound(f"Policy {policy_id!r} not found.", details={"policy": policy_id})
    return row


async def update(
    reg: Registry,
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    body: PolicyFields,
    actor: str,
    *,
    whole: bool,
) -> asyncpg.Record:
    """Change a policy (`whole`: PUT, every field as given or its default) and POLICY_UPDATED."""
    fields = body.model_dump() if whole else body.model_dump(exclude_unset=True)
    nulls = {k: "must not be null" for k, v in fields.items() if v is None}
    if nulls:
        raise Unprocessable("The policy is invalid.", details={"fields": nulls})
    _check({**dict(row), **fields})
    try:
        async with conn.transaction():
            updated = await store.update_policy(conn, row["id"], fields)
    except asyncpg.UniqueViolationError:
        raise _taken(fields.get("name")) from None
    await _emit(reg, conn, ev.POLICY_UPDATED, row["org"], updated, actor)
    return updated


async def delete(reg: Registry, conn: asyncpg.Connection, row: asyncpg.Record, actor: str) -> None:
    """Delete a policy and POLICY_DELETED."""
    await store.delete_policy(conn, row["id"])
    version = await servers_store.next_version(conn)
    await _emit(reg, conn, ev.POLICY_DELETED, row["org"], {**dict(row), "version": version}, actor)


async def _version(conn: asyncpg.Connection, org: str, body: ApprovalIn) -> asyncpg.Record:
    """The version an approval names, if the org may read its MCP; else 404."""
    row = await store.find_version(conn, org, body.mcp, body.version)
    if row is None:
        raise NotFound(
            f"MCP {body.mcp!r} has no version {body.version!r}.",
            details={"mcp": body.mcp, "version": body.version},
        )
    return row


async def _approval_changed(
    reg: Registry, conn: asyncpg.Connection, org: str, version: asyncpg.Record, actor: str
) -> None:
    """POLICY_UPDATED without a policy: the org's approvals changed."""
    payload = ev.PolicyChanged(
        None,
        f"approval:{version['mcp']}@{version['visible_version']}",
        await servers_store.next_version(conn),
    )
    await reg.emit(conn, ev.POLICY_UPDATED.event(payload, source=SCHEMA, actor=actor, org=org))


async def approve(
    reg: Registry, conn: asyncpg.Connection, org: str, body: ApprovalIn, actor: str
) -> dict[str, Any]:
    """Record the org's approval of a version."""
    version = await _version(conn, org, body)
    await store.upsert_approval(conn, org, version["version_id"], actor, body.reason)
    await _approval_changed(reg, conn, org, version, actor)
    rows = await store.list_approvals(conn, [org])
    return approval_out(next(r for r in rows if r["version_id"] == version["version_id"]))


async def withdraw(
    reg: Registry, conn: asyncpg.Connection, org: str, body: ApprovalIn, actor: str
) -> None:
    """Withdraw the org's approval of a version (404 when there was none)."""
    version = await _version(conn, org, body)
    if not await store.delete_approval(conn, org, version["version_id"]):
        raise NotFound("The version is not approved.", details={"mcp": body.mcp})
    await _approval_changed(reg, conn, org, version, actor)


async def ci_org(reg: Registry, principal: Principal, ref: str) -> str:
    """The org a CI evaluation is for: the caller's own, with scope `ci:org:<slug>`.

    Another org's is 404, as if it did not exist (tenancy: nothing tells a token whether an
    org it does not belong to exists); the caller's own without the scope is 403."""
    org = await _resolve(reg, principal, ref)
    if org is None or not _sees(principal, org):
        raise NotFound(f"Organisation {ref!r} not found.", details={"org_id": ref})
    slug = _slug_of(principal, org)
    if not principal.is_platform_admin and not principal.has_scope(f"ci:org:{slug}"):
        raise Forbidden(f"CI evaluation needs the scope ci:org:{slug}.", details={"org_id": ref})
    return org


async def evaluate_ci(conn: asyncpg.Connection, org: str, body: CiEvaluate) -> dict[str, Any]:
    """PASS when every MCP named is ALLOWED by the org's policies (seed response)."""
    rules = [rule_of(r) for r in await store.enabled_policies(conn, [org])]
    approved = {str(r["version_id"]) for r in await store.list_approvals(conn, [org])}
    results = []
    for item in body.mcps:
        row = await store.find_version(conn, org, item.name, item.version)
        if row is None:
            results.append(
                {
                    "name": item.name,
                    "version": item.version,
                    "result": "NOT_FOUND",
                    "global_score": None,
                    "reason": f"No version {item.version or 'at all'} of {item.name!r} is known.",
                    "matched_policy": None,
                }
            )
            continue
        cert = certification_of(row)
        verdict = policy.evaluate(rules, cert.mcp, cert, approved)
        results.append(
            {
                "name": item.name,
                "version": cert.visible_version,
                "result": verdict.result,
                "global_score": cert.global_score,
                "grade": cert.grade,
                "reason": verdict.reason,
                "matched_policy": verdict.matched_policy(),
            }
        )
    passed = all(r["result"] == policy.ALLOWED for r in results)
    return {
        "result": "PASS" if passed else "FAIL",
        "evaluated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "environment": body.environment,
        "org_id": org,
        "mcps": results,
    }


async def policy_sets(conn: asyncpg.Connection, org_ids: list[str] | None) -> list[OrgPolicies]:
    """Every org's enabled policies and approved versions (None: all orgs), for the gateway."""
    by_org: dict[str, OrgPolicies] = {}
    for row in await store.enabled_policies(conn, org_ids):
        by_org.setdefault(row["org"], OrgPolicies(org=row["org"])).policies.append(rule_of(row))
    for row in await store.list_approvals(conn, org_ids):
        by_org.setdefault(row["org"], OrgPolicies(org=row["org"])).approved.append(
            str(row["version_id"])
        )
    for org in org_ids or []:
        by_org.setdefault(org, OrgPolicies(org=org))  # none left: the gateway forgets them
    return list(by_org.values())
