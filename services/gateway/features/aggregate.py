"""Resources, prompts, completion and logging of every readable server, on `/mcp` and `/mcp/{team}`.

Lists are gathered live from the upstreams the caller may read (in parallel over the pooled
sessions; the registry snapshot has no templates), in a deterministic order: by server name, then
the upstream's own order. One page holds everything; a server that fails is left out and named in
`_meta["io.switchboard/unavailableServers"]`; a server that does not offer the method (-32601)
is simply skipped.

Names and URIs are namespaced so they never collide and route without any lookup state:
- prompts: `{server}{separator}{name}` (like tools, same client-safe alias when too long);
- resources and templates: `switchboard://{server}/{upstream URI}`, the upstream URI kept
  verbatim after the first `/` (so a template still expands: `switchboard://docs/file:///{path}`);
  `resources/read` (and `completion/complete` on a `ref/resource`) strips the prefix, forwards
  the upstream URI and wraps the URIs in the result again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from services.gateway import client_meta
from services.gateway.features import input_bridge
from services.gateway.features.resource_watch import SERVER_VIEW
from services.gateway.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, RpcFault, relayed
from services.gateway.routing_table import ServerEntry, public_name

if TYPE_CHECKING:
    from services.gateway.call_context import CallContext
    from services.gateway.core import Core
    from services.gateway.features.resource_watch import ResourceWatch
    from services.gateway.upstreams.transport import Notify

SCHEME = "switchboard://"
UNAVAILABLE_META = "io.switchboard/unavailableServers"
MAX_PAGES = 20
LISTS = {
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
    "prompts/list": "prompts",
}
SUBSCRIBE = frozenset({"resources/subscribe", "resources/unsubscribe"})
AGGREGATED = frozenset(
    {*LISTS, *SUBSCRIBE, "resources/read", "prompts/get", "completion/complete", "logging/setLevel"}
)


def wrap(server: str, uri: str) -> str:
    """The gateway URI of an upstream resource (or template)."""
    return f"{SCHEME}{server}/{uri}"


def unwrap(uri: Any) -> tuple[str, str]:
    """(server, upstream URI) of a gateway URI; anything else is -32602."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise RpcFault(
            INVALID_PARAMS, f"Unknown resource: {str(uri)[:200]}", {"uri": str(uri)[:200]}
        )
    server, sep, rest = uri[len(SCHEME) :].partition("/")
    if not server or not sep or not rest:
        raise RpcFault(INVALID_PARAMS, f"Unknown resource: {uri[:200]}", {"uri": uri[:200]})
    return server, rest


class Aggregate:
    """The non-tool methods of the aggregated endpoints."""

    def __init__(self, core: Core, watch: ResourceWatch | None = None) -> None:
        self.core = core
        self.watch = watch  # upstream resource subscriptions (legacy sessions, listen streams)

    def servers(self, ctx: CallContext) -> list[ServerEntry]:
        """Routable servers the caller may read through this endpoint, by name.

        Code tools have neither resources nor prompts."""
        out = []
        for server in sorted(self.core.table.servers.values(), key=lambda s: s.name):
            if server.routable and server.transport != "code" and self._readable(ctx, server):
                out.append(server)
        return out

    def _readable(self, ctx: CallContext, server: ServerEntry) -> bool:
        """Whether the caller may read all of `server`: its resources, prompts and completion.

        Through a team endpoint, that team's grants count; a grant narrowed to tools gives none
        of the three."""
        return self.core.table.may_read_server(ctx.principal, server, ctx.team, whole=True)

    def server(self, name: str, ctx: CallContext) -> ServerEntry:
        """A server the caller named; unknown or unreadable is -32602."""
        server = self.core.table.servers.get(name)
        if server is None or not server.routable or not self._readable(ctx, server):
            raise RpcFault(INVALID_PARAMS, f"Unknown server: {name[:100]}", {"server": name[:100]})
        return server

    async def handle(self, method: str, params: dict[str, Any], ctx: CallContext) -> Any:
        """Answer one aggregated method."""
        if method in LISTS:
            if params.get("cursor") is not None:
                raise RpcFault(INVALID_PARAMS, "Invalid cursor.", {"cursor": "never issued"})
            return await self.list(method, ctx)
        if method == "resources/read":
            server, uri = unwrap(params.get("uri"))
            entry = self.server(server, ctx)
            upstream_params = {**params, "uri": uri}
            result = await self._answered(entry, method, upstream_params, ctx)
            for item in result.get("contents") or ():
                if isinstance(item, dict) and isinstance(item.get("uri"), str):
                    item["uri"] = wrap(server, item["uri"])
            return result
        if method in SUBSCRIBE:
            return await self.subscribe(method, params, ctx)
        if method == "prompts/get":
            server, name = self.resolve_prompt(params.get("name"), ctx)
            return await self._answered(server, method, {**params, "name": name}, ctx)
        if method == "completion/complete":
            return await self.complete(params, ctx)
        if method == "logging/setLevel":
            await asyncio.gather(
                *(self._quietly(s, method, params) for s in self.servers(ctx)),
            )
            return {}
        raise RpcFault(METHOD_NOT_FOUND, f"Method not found: {method}", {"method": method})

    async def subscribe(self, method: str, params: dict[str, Any], ctx: CallContext) -> dict:
        """resources/subscribe and unsubscribe of a legacy session (2026-07-28: listen)."""
        if self.watch is None or self.core.relay is None or not ctx.session_id or ctx.modern:
            raise RpcFault(
                METHOD_NOT_FOUND, f"{method} needs a legacy session (2026-07-28: listen)."
            )
        server_name, uri = self.subscription(params.get("uri"), ctx)
        session_id, relay = ctx.session_id, self.core.relay
        owner = session_id + SERVER_VIEW if ctx.server is not None else session_id
        if method == "resources/unsubscribe":
            await self.watch.remove_everywhere(server_name, uri, owner)
            return {}

        async def deliver(changed: str) -> None:
            note = {"uri": self.client_uri(server_name, changed, ctx)}
            msg = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": note}
            await relay.send(session_id, msg)

        await self.watch.add(
            self.server(server_name, ctx), uri, owner, deliver, expires_at=ctx.session_expires_at
        )
        return {}

    @staticmethod
    def subscription(uri: Any, ctx: CallContext) -> tuple[str, str]:
        """(server, upstream URI) a subscription names.

        A `switchboard://` URI, or on `/mcp/servers/{path}` the upstream's own."""
        if ctx.server is None:
            return unwrap(uri)
        if not isinstance(uri, str) or not uri:
            raise RpcFault(INVALID_PARAMS, "params.uri must be a non-empty string.")
        return ctx.server.name, uri

    @staticmethod
    def client_uri(server: str, uri: str, ctx: CallContext) -> str:
        """An upstream URI as the client names it (unwrapped on `/mcp/servers/{path}`)."""
        return uri if ctx.server is not None else wrap(server, uri)

    async def list(self, method: str, ctx: CallContext) -> dict[str, Any]:
        """One list over every readable server."""
        key = LISTS[method]
        servers = self.servers(ctx)
        gathered = await asyncio.gather(*(self._list_one(s, method, key) for s in servers))
        items: list[dict[str, Any]] = []
        missing: list[str] = []
        for server, got in zip(servers, gathered, strict=True):
            if got is None:
                missing.append(server.name)
                continue
            for item in got:
                if not isinstance(item, dict):
                    continue
                if key == "prompts" and isinstance(item.get("name"), str):
                    items.append({**item, "name": self._prompt_name(server.name, item["name"])})
                elif key == "resources" and isinstance(item.get("uri"), str):
                    items.append({**item, "uri": wrap(server.name, item["uri"])})
                elif key == "resourceTemplates" and isinstance(item.get("uriTemplate"), str):
                    items.append({**item, "uriTemplate": wrap(server.name, item["uriTemplate"])})
        result: dict[str, Any] = {key: items}
        if missing:
            result["_meta"] = {UNAVAILABLE_META: missing}
        if ctx.modern:
            result["ttlMs"] = self.core.settings.list_ttl_ms
            result["cacheScope"] = "private"
        return result

    async def _list_one(self, server: ServerEntry, method: str, key: str) -> list[Any] | None:
        """Every page of one server's list; [] when it lacks the method, None when it failed."""
        items: list[Any] = []
        params: dict[str, Any] = {}
        for _ in range(MAX_PAGES):
            try:
                reply, _ = await self.core.pool.request(server, method, params)
            except RpcFault:
                return None
            if "error" in reply:
                code = (reply.get("error") or {}).get("code")
                return items if code == METHOD_NOT_FOUND else None
            result = reply.get("result") or {}
            items.extend(result.get(key) or ())
            cursor = result.get("nextCursor")
            if not cursor:
                break
            params = {"cursor": cursor}
        return items

    def _prompt_name(self, server: str, name: str) -> str:
        """The listed name of a prompt."""
        return public_name(server, name, self.core.table.separator)

    def resolve_prompt(self, name: Any, ctx: CallContext) -> tuple[ServerEntry, str]:
        """(server, upstream prompt name) of a listed prompt name."""
        if not isinstance(name, str) or not name:
            raise RpcFault(INVALID_PARAMS, "params.name must be a non-empty string.")
        sep = self.core.table.separator
        for server in sorted(self.servers(ctx), key=lambda s: -len(s.name)):
            prefix = server.name + sep
            if name.startswith(prefix) and len(name) > len(prefix):
                return server, name[len(prefix) :]
        for server in self.servers(ctx):  # a shortened alias: match against the snapshot
            for prompt in server.prompts:
                upstream = prompt.get("name")
                if isinstance(upstream, str) and self._prompt_name(server.name, upstream) == name:
                    return server, upstream
        raise RpcFault(INVALID_PARAMS, f"Unknown prompt: {name[:100]}", {"prompt": name[:100]})

    async def complete(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """completion/complete for a namespaced prompt or resource template."""
        ref = params.get("ref")
        if not isinstance(ref, dict):
            raise RpcFault(INVALID_PARAMS, "params.ref must be an object.")
        if ref.get("type") == "ref/prompt":
            server, name = self.resolve_prompt(ref.get("name"), ctx)
            ref = {**ref, "name": name}
        elif ref.get("type") == "ref/resource":
            server_name, uri = unwrap(ref.get("uri"))
            server, ref = self.server(server_name, ctx), {**ref, "uri": uri}
        else:
            raise RpcFault(INVALID_PARAMS, "params.ref.type must be ref/prompt or ref/resource.")
        return await self._forward(server, "completion/complete", {**params, "ref": ref})

    async def _forward(
        self,
        server: ServerEntry,
        method: str,
        params: dict[str, Any],
        on_notify: Notify | None = None,
        capabilities: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One request to one server, its JSON-RPC error relayed.

        A 2026-07-28 client's `capabilities` go with it."""
        if "_meta" in params or capabilities is not None:
            params = dict(params)
            if meta := client_meta.upstream_meta(params.pop("_meta", None), capabilities):
                params["_meta"] = meta
        reply, _ = await self.core.pool.request(server, method, params, on_notify=on_notify)
        if "error" in reply:
            raise relayed(reply["error"])
        return dict(reply.get("result") or {})

    async def _answered(
        self, server: ServerEntry, method: str, params: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any]:
        """Forward; a legacy client's `input_required` is answered through its stream."""
        if "requestState" in params and self.core.parked_retry(params, ctx):
            reply, _ = await self.core.parking.resume(params, input_bridge.principal_key(ctx))  # type: ignore[union-attr]
            if "error" in reply:
                raise relayed(reply["error"])
            return dict(reply.get("result") or {})
        on_notify = input_bridge.relaying(self.core, server, ctx)
        result = await self._forward(server, method, params, on_notify, ctx.capabilities)
        if not ctx.modern and result.get("resultType") == "input_required":
            upstream_params = {k: v for k, v in params.items() if k != "_meta"}
            result = await input_bridge.resolve(
                self.core, server, method, upstream_params, result, ctx
            )
        return result

    async def _quietly(self, server: ServerEntry, method: str, params: dict[str, Any]) -> None:
        """A best-effort request (logging level): one server's failure does not matter."""
        try:
            await self._forward(server, method, params)
        except RpcFault:
            pass


__all__ = ["AGGREGATED", "Aggregate", "unwrap", "wrap"]
