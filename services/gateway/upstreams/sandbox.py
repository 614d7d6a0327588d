"""stdio servers and code tools: reached through the sandbox service over NATS."""

from __future__ import annotations

import itertools
from typing import Any

from libs.common import rpc_types
from libs.common.bus import Bus
from libs.common.errors import ApiError
from libs.common.rpc_types import SandboxCall
from services.gateway.jsonrpc import well_formed
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.transport import Notify, TransportFailure


class SandboxUpstream:
    """stdio servers and code tools, reached through the sandbox over NATS."""

    modern = False
    protocol: str | None = None  # the sandbox holds the session with the process, not we

    def __init__(self, server: ServerEntry, bus: Bus) -> None:
        self.server = server
        self.bus = bus
        self._ids = itertools.count(1)

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_notify: Notify | None = None,
        principal: dict[str, Any] | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        """One JSON-RPC request as an rpc.sandbox.call."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            message["params"] = params
        request = SandboxCall(
            self.server.name, message, timeout_s, principal, transport=self.server.transport
        )
        try:
            answer = await self.bus.call(rpc_types.SANDBOX_CALL, request, timeout=timeout_s + 1)
        except ApiError as exc:
            if exc.status == 504:
                raise TimeoutError() from None
            raise TransportFailure(f"sandbox: {exc.code}: {exc.message}") from None
        reply = answer.message
        if reply is None or ("result" not in reply and "error" not in reply):
            raise TransportFailure("the sandbox answered without a JSON-RPC response")
        return well_formed(reply)

    async def close(self) -> None:
        """Nothing is held per server."""
