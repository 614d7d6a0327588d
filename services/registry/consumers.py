"""Events the registry consumes: sandbox code-tool changes refresh the built-in `code` server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog

from libs.common import events as ev
from libs.common import subjects
from libs.common.events import Event
from services.registry import refresh
from services.registry.context import SCHEMA, Registry
from services.registry.store import servers as servers_store

log = structlog.get_logger()

CODE_SERVER = "code"
DURABLE = "registry-code-tools"


async def ensure_code_server(reg: Registry, name: str = CODE_SERVER) -> None:
    """Create a code server if missing: the built-in `code`, or one a code tool was put under."""
    async with reg.pool.acquire() as conn, conn.transaction():
        if await servers_store.get_server(conn, name) is not None:
            return
        builtin = name == CODE_SERVER
        try:
            async with conn.transaction():
                server = await servers_store.insert_server(
                    conn,
                    {
                        "name": name,
                        "path": name,
                        "display_name": "Code tools" if builtin else name,
                        "description": "Python code tools approved in the sandbox."
                        if builtin
                        else f"Python code tools of {name}, approved in the sandbox.",
                        "transport": "code",
                        "created_by": "registry",
                    },
                )
        except asyncpg.UniqueViolationError:  # another replica created it first
            return
        payload = ev.ServerChanged(
            server["name"], str(server["id"]), server["version"], ["created"]
        )
        await reg.emit(conn, ev.SERVER_CREATED.event(payload, source=SCHEMA))


CODE_TOOL_TYPES = {t.name: t for t in (ev.CODE_TOOL_CREATED, ev.CODE_TOOL_UPDATED,
                                        ev.CODE_TOOL_DELETED)}  # fmt: skip


async def on_code_tool_changed(reg: Registry, event: Event) -> None:
    """A code tool was created, approved, changed or removed: rediscover the code server."""
    kind = CODE_TOOL_TYPES.get(event.type)
    if kind is None:
        raise ev.PayloadError(f"{event.type} is not a code tool event")
    payload = kind.decode(event)  # a payload unlike the contract is dropped as malformed
    name = payload.server or CODE_SERVER
    if kind is not ev.CODE_TOOL_DELETED:
        await ensure_code_server(reg, name)  # MCPBox: a tool put under a server of its own
    async with reg.pool.acquire() as conn:
        server = await servers_store.get_server(conn, name)
    if server is not None and server["transport"] == "code":
        await refresh.refresh(reg, server["id"], event.actor)


@asynccontextmanager
async def running(reg: Registry) -> AsyncIterator[None]:
    """Consume sandbox code-tool events durably (shared across replicas)."""

    async def handler(event: Event) -> None:
        await on_code_tool_changed(reg, event)

    reg.bus.consume(DURABLE, [subjects.CODE_TOOL_EVENTS], handler, deliver_new=True)
    yield
