"""Policy `approvers`: platform admins always; org admins of the request's org under org_admin."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from libs.common import db
from services.sandbox.store import approvals as approvals_store
from tests.integration.sandbox.conftest import register_stdio, unique_name
from tests.support.auth import AuthClient


async def pending_network_approval(pg_url: str, server: str, host: str) -> str:
    """A pending network approval for `server`, as an egress refusal opens it."""
    conn = await asyncpg.connect(pg_url)
    await db._init_connection(conn)  # the JSON codecs the service's pool uses
    try:
        row = await approvals_store.insert_approval(
            conn, kind="network", subject=host, server=server, details={"port": 443}
        )
    finally:
        await conn.close()
    assert row is not None
    return str(row["id"])


async def decide(api: httpx.AsyncClient, approval: str, headers: dict) -> httpx.Response:
    """Approve a network request."""
    return await api.post(
        f"/api/v1/sandbox/approvals/network/{approval}/action",
        json={"action": "approve", "reason": "needed"},
        headers=headers,
    )


async def test_org_admins_decide_network_requests_of_their_orgs_servers_only_under_org_admin(
    api: httpx.AsyncClient,
    reg_api: httpx.AsyncClient,
    auth: AuthClient,
    admin: dict[str, str],
    pg_url: str,
    sandbox: Any,
) -> None:
    org, other_org = await auth.create_org(), await auth.create_org()
    org_admin, member, stranger = (
        await auth.create_user(),
        await auth.create_user(),
        await auth.create_user(),
    )
    await auth.add_org_member(org["id"], org_admin, "admin")
    await auth.add_org_member(org["id"], member, "member")
    await auth.add_org_member(other_org["id"], stranger, "admin")
    # fresh logins carry the org roles
    org_admin_h = auth.bearer(
        (await auth.login(org_admin.username, org_admin.password))["access_token"]
    )
    member_h = auth.bearer((await auth.login(member.username, member.password))["access_token"])
    stranger_h = auth.bearer(
        (await auth.login(stranger.username, stranger.password))["access_token"]
    )
    name = unique_name("org-egress")
    await register_stdio(reg_api, admin, name, org=org["id"])
    first = await pending_network_approval(pg_url, name, "api.example.org")

    refused = await decide(api, first, org_admin_h)  # policy default: platform_admin
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"

    patched = await api.patch(
        "/api/v1/sandbox/policy", json={"approvers": "org_admin"}, headers=admin
    )
    assert patched.status_code == 200
    try:
        resp = await decide(api, first, member_h)
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "FORBIDDEN"
        # another org's request is not there for its admins (docs/TENANCY.md)
        resp = await decide(api, first, stranger_h)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "NOT_FOUND"
        module = await api.post(
            "/api/v1/sandbox/approvals/modules",
            json={"module": unique_name("mod")},
            headers=member_h,
        )
        assert module.status_code == 201
        platform_only = await api.post(
            f"/api/v1/sandbox/approvals/modules/{module.json()['id']}/action",
            json={"action": "reject"},
            headers=org_admin_h,
        )
        assert platform_only.status_code == 403
        assert platform_only.json()["error"]["code"] == "FORBIDDEN"

        approved = await decide(api, first, org_admin_h)
        assert approved.status_code == 200
        assert approved.json()["status"] == "approved"
        hosts = await api.get(f"/api/v1/sandbox/servers/{name}/allowed-hosts", headers=admin)
        assert "api.example.org" in hosts.json()["hosts"]
        revoked = await api.post(
            f"/api/v1/sandbox/approvals/network/{first}/revoke", json={}, headers=org_admin_h
        )
        assert revoked.status_code == 200
        assert revoked.json()["status"] == "revoked"

        second = await pending_network_approval(pg_url, name, "files.example.org")
        by_platform = await decide(api, second, admin)
        assert by_platform.status_code == 200
    finally:
        reset = await api.patch(
            "/api/v1/sandbox/policy", json={"approvers": "platform_admin"}, headers=admin
        )
        assert reset.status_code == 200
