"""Server operations: validate, store with secrets and events, refresh after changes.

Just over 300 lines on purpose: it holds the operations of one aggregate, the server (the model
of routes → servers → store), each a short function; their shared validation is private here.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import events as ev
from libs.common import ssrf
from libs.common.authn import Principal
from libs.common.errors import Conflict, NotFound, Unprocessable
from services.registry import certification, permissions, summaries, views
from services.registry.context import SCHEMA, Registry
from services.registry.crypto import MASK
from services.registry.schemas import ServerCreate, ServerFields
from services.registry.store import secrets as secrets_store
from services.registry.store import servers as servers_store

REFRESH_FIELDS = {"transport", "url", "headers", "command", "args", "env", "cwd"}
# where a server's stored secrets are sent: changing one of these by someone who may not carry
# the secrets there (a `write` grant) drops them (docs/TENANCY.md)
DESTINATION_FIELDS = ("transport", "url", "command", "args", "cwd")
SECRET_KINDS = {"headers": "header", "env": "env"}


def shape_problems(transport: str, fields: dict[str, Any]) -> dict[str, str]:
    """Field problems of a transport and the fields that go with it."""
    problems: dict[str, str] = {}
    if transport == "code":
        problems["transport"] = "code is reserved for the built-in code server"
    elif transport == "stdio":
        if not fields.get("command"):
            problems["command"] = "a stdio server needs a command"
        if fields.get("url"):
            problems["url"] = "a stdio server has no url"
    else:
        if not fields.get("url"):
            problems["url"] = "a remote server needs a url"
        if fields.get("command"):
            problems["command"] = "a remote server has no command"
    return problems


async def check_url(reg: Registry, conn: asyncpg.Connection, url: str | None) -> None:
    """422 when the URL breaks the SSRF rules (the check is repeated after DNS at connect)."""
    if not url:
        return
    try:
        ssrf.check_url(url, await reg.allowlist(conn))
    except ssrf.SsrfRefused as exc:
        raise Unprocessable(
            "The server URL is not allowed.", details={"fields": {"url": f"the URL {exc}"}}
        ) from None


def columns(fields: dict[str, Any], metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Request fields to column values (seed metadata folded into `metadata`)."""
    cols = {k: v for k, v in fields.items() if k in servers_store.WRITABLE}
    meta_updates = {k: fields[k] for k in views.METADATA_FIELDS if k in fields}
    if meta_updates:
        cols["metadata"] = {**(metadata or {}), **meta_updates}
    if "tags" in cols and cols["tags"] is None:
        cols["tags"] = []
    if "args" in cols and cols["args"] is None:
        cols["args"] = []
    return cols


async def store_secrets(
    reg: Registry,
    conn: asyncpg.Connection,
    server_id: Any,
    kind: str,
    values: dict[str, str],
    *,
    replace: bool,
) -> None:
    """Seal and store header/env values; MASK keeps an existing value."""
    keep = {k for k, v in values.items() if v == MASK}
    if replace:
        existing = await secrets_store.list_secrets(conn, [server_id])
        for row in existing:
            if row["kind"] == kind and row["key"] not in keep:
                await secrets_store.delete_secret(conn, server_id, kind, row["key"])
    for key, value in values.items():
        if key in keep:
            continue
        sealed = reg.box.seal(value, views.secret_aad(server_id, kind, key))
        await secrets_store.upsert_secret(conn, server_id, kind, key, sealed)


async def create(
    reg: Registry, conn: asyncpg.Connection, body: ServerCreate, org: str | None, actor: str
) -> asyncpg.Record:
    """Insert a server with its secrets and SERVER_CREATED, in the caller's transaction."""
    fields = body.model_dump(exclude_unset=True)
    problems = shape_problems(body.transport, fields)
    if problems:
        raise Unprocessable("The server is invalid.", details={"fields": problems})
    await check_url(reg, conn, body.url)
    cols = columns(fields, {})
    cols.update(org=org, created_by=actor, path=body.path or body.name)
    if body.catalog_version is not None:
        cols["catalog_version_id"] = await certification.link(conn, org, body.catalog_version)
    try:
        async with conn.transaction():
            server = await servers_store.insert_server(conn, cols)
    except asyncpg.UniqueViolationError as exc:
        what = "path" if "path" in (exc.constraint_name or "") else "name"
        value = cols[what]
        raise Conflict(
            f"A server with the {what} {value!r} already exists.", details={what: value}
        ) from None
    for field_name, kind in SECRET_KINDS.items():
        if fields.get(field_name):
            await store_secrets(reg, conn, server["id"], kind, fields[field_name], replace=False)
    payload = ev.ServerChanged(server["name"], str(server["id"]), server["version"], ["created"])
    await reg.emit(conn, ev.SERVER_CREATED.event(payload, source=SCHEMA, actor=actor, org=org))
    return server


def moved(server: asyncpg.Record, fields: dict[str, Any]) -> list[str]:
    """The destination fields a change actually changes (where secrets would be sent)."""
    return [f for f in DESTINATION_FIELDS if f in fields and fields[f] != server[f]]


def drop_secrets(server: asyncpg.Record, fields: dict[str, Any]) -> dict[str, Any]:
    """The change with every stored secret dropped.

    Headers and env become exactly what the change gives, and `********` (keep the stored
    value) is refused, since nothing is kept."""
    kept = {
        f"{name}.{key}": "a stored value cannot follow a change of the server's destination"
        for name in SECRET_KINDS
        for key, value in (fields.get(name) or {}).items()
        if value == MASK
    }
    if kept:
        raise Unprocessable(
            "Changing where the server connects drops its stored secrets; give new values.",
            details={"fields": kept},
        )
    return {**fields, "headers": fields.get("headers") or {}, "env": fields.get("env") or {}}


async def update(
    reg: Registry,
    conn: asyncpg.Connection,
    server: asyncpg.Record,
    body: ServerFields,
    actor: str,
    *,
    keep_secrets: bool = True,
) -> tuple[asyncpg.Record, bool]:
    """Apply changed fields; returns the server and whether a refresh is due.

    Unless `keep_secrets` (the caller may carry them), a change of the destination drops the
    stored secrets."""
    fields = body.model_dump(exclude_unset=True)
    if not keep_secrets and moved(server, fields):
        fields = drop_secrets(server, fields)
    merged = {**dict(server), **{k: v for k, v in fields.items() if k not in SECRET_KINDS}}
    transport = merged["transport"]
    if transport != "code":
        problems = shape_problems(transport, merged)
        if problems:
            raise Unprocessable("The server is invalid.", details={"fields": problems})
    if "url" in fields:
        await check_url(reg, conn, fields["url"])
    cols = columns(fields, server["metadata"])
    if "catalog_version" in fields:
        cols["catalog_version_id"] = await certification.link(
            conn, server["org"], body.catalog_version
        )
    try:
        async with conn.transaction():
            updated = await servers_store.update_server(conn, server["id"], cols)
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"The path {cols.get('path')!r} is taken.", details={"path": cols.get("path")}
        ) from None
    for field_name, kind in SECRET_KINDS.items():
        if field_name in fields:
            await store_secrets(
                reg, conn, server["id"], kind, fields[field_name] or {}, replace=True
            )
    changed = sorted(fields)
    # linked to a catalog version: the stored tools are held to its certified snapshot
    held = await certification.hold_stored(conn, updated) if "catalog_version" in fields else []
    payload = ev.ServerChanged(updated["name"], str(updated["id"]), updated["version"], changed)
    for part in summaries.with_tools(payload, held):
        await reg.emit(
            conn, ev.SERVER_UPDATED.event(part, source=SCHEMA, actor=actor, org=updated["org"])
        )
    return updated, bool(REFRESH_FIELDS & set(fields)) or fields.get("enabled") is True


async def delete(
    reg: Registry, conn: asyncpg.Connection, server: asyncpg.Record, actor: str
) -> None:
    """Delete a server and publish SERVER_DELETED."""
    await servers_store.delete_server(conn, server["id"])
    version = await servers_store.next_version(conn)
    payload = ev.ServerChanged(server["name"], str(server["id"]), version, ["deleted"])
    await reg.emit(
        conn, ev.SERVER_DELETED.event(payload, source=SCHEMA, actor=actor, org=server["org"])
    )


async def toggle(
    reg: Registry, conn: asyncpg.Connection, server: asyncpg.Record, enabled: bool, actor: str
) -> asyncpg.Record:
    """Enable or disable a server and publish SERVER_TOGGLED."""
    updated = await servers_store.update_server(conn, server["id"], {"enabled": enabled})
    payload = ev.ServerToggled(updated["name"], str(updated["id"]), updated["version"], enabled)
    await reg.emit(
        conn, ev.SERVER_TOGGLED.event(payload, source=SCHEMA, actor=actor, org=updated["org"])
    )
    return updated


async def touch(
    reg: Registry,
    conn: asyncpg.Connection,
    server: asyncpg.Record,
    changed: list[str],
    actor: str | None,
    cols: dict[str, Any] | None = None,
    *,
    tools: list[dict[str, Any]] | None = None,
) -> asyncpg.Record:
    """Bump a server's version (optionally writing columns) and publish SERVER_UPDATED.

    The event carries the summary of the tool changes `tools` (summaries.tool_item) when given."""
    updated = await servers_store.update_server(conn, server["id"], cols or {})
    payload = ev.ServerChanged(updated["name"], str(updated["id"]), updated["version"], changed)
    for part in summaries.with_tools(payload, tools):
        await reg.emit(
            conn, ev.SERVER_UPDATED.event(part, source=SCHEMA, actor=actor, org=updated["org"])
        )
    return updated


async def get_or_404(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """A server by name, path or id, or 404."""
    server = await servers_store.get_server(conn, ref)
    if server is None:
        raise NotFound(f"Server {ref!r} not found.", details={"server": ref})
    return server


def shared_payload(server: asyncpg.Record, org: str) -> ev.ServerShared:
    """The payload of a share change: the server, the org, every org it is now shared with."""
    return ev.ServerShared(
        server["name"], str(server["id"]), server["version"], org, list(server["shared_with"])
    )


async def share(
    reg: Registry, conn: asyncpg.Connection, server: asyncpg.Record, org: str, actor: str
) -> asyncpg.Record:
    """Share a server with an org (platform admins); SERVER_SHARED with the new list."""
    await servers_store.insert_share(conn, server["id"], org, actor)
    updated = await servers_store.update_server(conn, server["id"], {})
    payload = shared_payload(updated, org)
    await reg.emit(
        conn, ev.SERVER_SHARED.event(payload, source=SCHEMA, actor=actor, org=updated["org"])
    )
    return updated


async def unshare(
    reg: Registry, conn: asyncpg.Connection, server: asyncpg.Record, org: str, actor: str
) -> asyncpg.Record:
    """Stop sharing a server with an org; its grants there stop working at once.

    404 when it was not shared with it."""
    if not await servers_store.delete_share(conn, server["id"], org):
        raise NotFound("The server is not shared with that org.", details={"org": org})
    updated = await servers_store.update_server(conn, server["id"], {})
    payload = shared_payload(updated, org)
    await reg.emit(
        conn, ev.SERVER_UNSHARED.event(payload, source=SCHEMA, actor=actor, org=updated["org"])
    )
    return updated


async def readable(conn: asyncpg.Connection, principal: Principal, ref: str) -> asyncpg.Record:
    """A server the principal may read, else 404."""
    server = await get_or_404(conn, ref)
    permissions.require_read(principal, server, ref)
    return server


async def writable(conn: asyncpg.Connection, principal: Principal, ref: str) -> asyncpg.Record:
    """A server the principal may change, else 404 (invisible) or 403."""
    server = await get_or_404(conn, ref)
    permissions.require_write(principal, server, ref)
    return server


async def public_view(
    conn: asyncpg.Connection, server: asyncpg.Record, principal: Principal | None = None
) -> dict[str, Any]:
    """The masked view of one server, as `principal` may see it."""
    view = views.server_out(
        server,
        await secrets_store.list_secrets(conn, [server["id"]]),
        _full(principal, server),
    )
    certs = await certification.of_servers(conn, [server])
    view["certification"] = certification.out(certs.get(server["id"]))
    return view


async def public_views(
    conn: asyncpg.Connection, servers: list[asyncpg.Record], principal: Principal | None = None
) -> list[dict]:
    """Masked views of many servers with one secrets query."""
    rows = await secrets_store.list_secrets(conn, [s["id"] for s in servers])
    by_server: dict[Any, list] = {}
    for row in rows:
        by_server.setdefault(row["server_id"], []).append(row)
    certs = await certification.of_servers(conn, servers)
    return [
        {
            **views.server_out(s, by_server.get(s["id"], []), _full(principal, s)),
            "certification": certification.out(certs.get(s["id"])),
        }
        for s in servers
    ]


def _full(principal: Principal | None, server: asyncpg.Record) -> bool:
    """Whether the view may show the secrets' names and the orgs the server is shared with.

    Not to those who reach it only through a share."""
    return principal is None or permissions.inspects(principal, server)
