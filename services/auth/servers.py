"""What auth asks the registry about servers: a server named in a grant, within the team's org."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common import rpc_types
from libs.common.bus import Bus, RpcError
from libs.common.errors import ApiError, NotFound, Unavailable
from libs.common.rpc_types import ResolvedServer, ResolveRequest

RESOLVE_TIMEOUT_S = 5.0


async def resolve(bus: Bus, org: str, refs: Sequence[str]) -> dict[str, ResolvedServer]:
    """The servers named by `refs` (names or ids) that the org owns or was shared, by ref.

    A server of another org is absent, exactly like one that does not exist."""
    if not refs:
        return {}
    try:
        reply = await bus.call(
            rpc_types.REGISTRY_RESOLVE, ResolveRequest(org, list(refs)), timeout=RESOLVE_TIMEOUT_S
        )
    except RpcError as exc:
        if exc.status < 500:
            return {}
        raise Unavailable("The registry could not check the server.") from None
    except ApiError:
        raise Unavailable("The registry is not reachable to check the server.") from None
    return {item.ref: item for item in reply.servers}


async def resolve_one(bus: Bus, org: str, ref: str) -> ResolvedServer:
    """The server `ref` of the org (or shared with it), else 404 as if it did not exist."""
    found = (await resolve(bus, org, [ref])).get(ref)
    if found is None:
        raise NotFound(f"Server {ref!r} not found.", details={"server": ref})
    return found
