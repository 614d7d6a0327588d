"""`trusted`: an org admin's word that a server's tool annotations are honest (gateway retries)."""

from __future__ import annotations

from typing import Any

import httpx

from services.registry.context import Registry
from tests.integration.registry.test_discovery import snapshot
from tests.support.auth import unique


async def test_only_admins_of_the_server_s_org_may_mark_it_trusted(
    api: Any, auth: Any, registry_url: str, reg: Registry
) -> None:
    org = await auth.create_org()
    writers = await auth.create_team(org["slug"], name=unique("writers"))
    writer, org_admin = await auth.create_user(), await auth.create_user()
    await auth.add_member(writers["name"], writer)
    await auth.add_org_member(org["id"], org_admin, "admin")
    tokens = {
        u.id: (await auth.login(u.username, u.password))["access_token"]
        for u in (writer, org_admin)
    }

    def as_(user: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {tokens[user.id]}"}
        return httpx.AsyncClient(base_url=registry_url, timeout=20, headers=headers)

    body = {"name": "files", "transport": "stdio", "command": "npx", "org": org["id"]}
    async with as_(org_admin) as c:
        created = await c.post("/api/v1/servers", json=body)
    assert created.status_code == 201 and created.json()["trusted"] is False
    await auth.grant(writers["name"], "files", ["read", "write"])
    async with as_(writer) as c:
        denied = await c.patch("/api/v1/servers/files", json={"trusted": True})
        also = await c.put("/api/v1/servers/files", json={"trusted": False, "description": "d"})
        fine = await c.patch("/api/v1/servers/files", json={"description": "ours"})
    assert denied.status_code == 403 and denied.json()["error"]["details"]["field"] == "trusted"
    assert also.status_code == 403
    assert fine.status_code == 200 and fine.json()["trusted"] is False
    async with as_(org_admin) as c:
        marked = await c.patch("/api/v1/servers/files", json={"trusted": True})
        null = await c.patch("/api/v1/servers/files", json={"trusted": None})
    assert marked.status_code == 200 and marked.json()["trusted"] is True
    assert null.status_code == 422 and "trusted" in null.json()["error"]["details"]["fields"]
    snap = await snapshot(reg, names=["files"])
    assert snap["servers"][0]["trusted"] is True
