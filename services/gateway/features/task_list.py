"""`tasks/list` (2025-11-25): the caller's tasks from the ownership records, a page at a time."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from libs.common.authn import Principal
from services.gateway.clients.sessions import principal_fingerprint
from services.gateway.features.task_records import TaskRecords
from services.gateway.jsonrpc import INVALID_PARAMS, UPSTREAM_UNAVAILABLE, RpcFault
from services.gateway.routing_table import ServerEntry

if TYPE_CHECKING:
    from services.gateway.call_context import CallContext
    from services.gateway.core import Core

log = structlog.get_logger()

UNAVAILABLE_META = "io.switchboard/unavailableServers"
LIST_PAGE = 50  # at most, per tasks/list page: each listed task is one upstream tasks/get
GONE = "gone"
RouteOf = Callable[[str, Principal], ServerEntry | None]
Rewrap = Callable[[dict[str, Any], ServerEntry, "CallContext"], dict[str, Any]]


class TaskList:
    """Lists a caller's tasks: its records, each task's state asked of its upstream."""

    def __init__(self, core: Core, records: TaskRecords, route: RouteOf, rewrap: Rewrap) -> None:
        self.core = core
        self.records = records
        self.route = route  # a route tag -> its connection, while the caller may execute there
        self.rewrap = rewrap  # upstream task ids -> the caller's wrapped ids

    async def list(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """tasks/list (2025-11-25): the caller's tasks on servers it may execute on.

        A page at a time (oldest first); servers that failed are named in `_meta`.
        """
        after = decode_cursor(params.get("cursor"))
        try:
            records = await self.records.owned(principal_fingerprint(ctx.principal))
        except Exception as exc:  # NATS down or slow: say so, do not pretend there are none
            log.warning("task_records_unavailable", error=repr(exc))
            raise RpcFault(UPSTREAM_UNAVAILABLE, "The task records are unavailable.") from None
        listed = []
        for rec in sorted(records, key=lambda r: (r.created, r.key)):
            if after is not None and (rec.created, rec.key) <= after:
                continue
            route = self.route(rec.route, ctx.principal)
            if route is not None and route.id == rec.server_id:
                listed.append((rec, route))
        page = listed[: max(1, min(self.core.settings.list_page_size, LIST_PAGE))]
        got = await asyncio.gather(*(self._task(route, rec.task_id) for rec, route in page))
        tasks: list[dict[str, Any]] = []
        missing: set[str] = set()
        for (rec, route), outcome in zip(page, got, strict=True):
            if outcome is None:
                missing.add(route.name)
            elif outcome == GONE:
                await self.records.drop(rec.key)
            elif isinstance(outcome, dict):
                tasks.append(self.rewrap(outcome, route, ctx))
        result: dict[str, Any] = {"tasks": tasks}
        if len(listed) > len(page):
            last = page[-1][0]
            result["nextCursor"] = encode_cursor(last.created, last.key)
        if missing:
            result["_meta"] = {UNAVAILABLE_META: sorted(missing)}
        return result

    async def _task(self, route: ServerEntry, task_id: str) -> dict[str, Any] | str | None:
        """One task's state from its upstream: the Task, GONE (unknown there) or None (failed)."""
        try:
            reply, _ = await self.core.pool.request(route, "tasks/get", {"taskId": task_id})
        except RpcFault:
            return None
        if "error" in reply:
            return GONE if (reply.get("error") or {}).get("code") == INVALID_PARAMS else None
        return dict(reply.get("result") or {})


def encode_cursor(created: float, key: str) -> str:
    """An opaque tasks/list cursor: the position after the last listed record."""
    return base64.urlsafe_b64encode(orjson.dumps([created, key])).decode()


def decode_cursor(cursor: Any) -> tuple[float, str] | None:
    """The position in a cursor; a bad cursor is -32602."""
    if cursor is None:
        return None
    try:
        created, key = orjson.loads(base64.urlsafe_b64decode(str(cursor).encode()))
        if not isinstance(key, str):
            raise ValueError
        return float(created), key
    except (ValueError, TypeError):
        raise RpcFault(INVALID_PARAMS, "Invalid cursor.", {"cursor": str(cursor)[:100]}) from None
