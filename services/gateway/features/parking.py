"""Server-to-client requests of session-based upstreams, for 2026-07-28 (stateless) clients.

A 2025-era upstream sends `elicitation/create` (or sampling, roots) as a JSON-RPC request on the
call's SSE response (Streamable HTTP) or on its one shared stream (the deprecated HTTP+SSE
transport, attributed to a call only when it is the one call in flight: `legacy_sse.py`) and
waits for the answer on its session. A 2026-07-28 client cannot take a standalone request; it
takes an `input_required` result and retries the request with `inputResponses` + `requestState`.
So when such a request arrives during a modern client's call (and only then: the common path
pays nothing), the call is parked: its upstream SSE response stays open on this replica (on an
SSE upstream: the call stays pending on the shared stream), and the client gets
`input_required` with the request embedded and a signed `requestState` naming this replica and
the parked call. The retry may land on any replica: it is sent over core NATS
(`live.gateway.retry.<instance>`, request/reply) to the owner, which POSTs the answer upstream
on the session and reads on until the call's response (or the next request, which parks the
call again). A call whose retry does not come within the upstream timeout is dropped (its
response closed, `notifications/cancelled` sent upstream).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from libs.common import subjects
from libs.common.signed import Expired, Signer, TokenError
from services.gateway.jsonrpc import UPSTREAM_ERROR, UPSTREAM_TIMEOUT, RpcFault, well_formed
from services.gateway.upstreams.transport import InputNeeded, TransportFailure

if TYPE_CHECKING:
    from libs.common.bus import Bus
    from services.gateway.routing_table import ServerEntry
    from services.gateway.upstreams.http_client import Response
    from services.gateway.upstreams.legacy_sse import SseUpstream
    from services.gateway.upstreams.streamable_http import HttpUpstream

log = structlog.get_logger()

PREFIX = "sbp1."
PURPOSE = "gateway parked call"
INPUT_KEY = "upstream"
INVALID_PARAMS = -32602


@dataclass
class Parked:
    """One upstream call waiting for a client's retry."""

    server: ServerEntry
    upstream: HttpUpstream | SseUpstream
    resp: Response | None  # the call's open SSE response (none on an SSE upstream)
    rid: int
    request_id: Any  # the upstream's server-to-client request id
    principal: str
    expiry: asyncio.TimerHandle | None = None


def holds(params: dict[str, Any]) -> bool:
    """Whether a request is the retry of a call parked here (its state is ours)."""
    state = params.get("requestState")
    return isinstance(state, str) and state.startswith(PREFIX)


class Parking:
    """Parked calls of this replica, and the routing of retries to the replica holding them."""

    def __init__(self, bus: Bus | None, secret: bytes, timeout_s: float) -> None:
        self.bus = bus
        self.signer = Signer(secret, PURPOSE)
        self.timeout_s = timeout_s
        self.instance = uuid.uuid4().hex[:16]
        self.calls: dict[str, Parked] = {}
        self._sub: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Take retries for this replica's parked calls from the others."""
        if self.bus is None:
            return

        async def on_retry(msg: Any) -> None:
            task = asyncio.get_running_loop().create_task(self._remote(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        subject = f"{subjects.GATEWAY_RETRY}.{self.instance}"
        self._sub = await self.bus.listen(subject, on_retry, owned=False)

    async def stop(self) -> None:
        """Stop taking retries; drop every parked call."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # the connection may already be closed
                pass
        for call_id in list(self.calls):
            await self._expire(call_id)

    # ---- parking ---------------------------------------------------------------------------

    async def park(self, server: ServerEntry, principal: str, need: InputNeeded) -> dict[str, Any]:
        """Keep the call open here; the client's `input_required` result."""
        assert need.upstream is not None
        call_id = uuid.uuid4().hex
        parked = Parked(
            server, need.upstream, need.resp, need.rid, need.request.get("id"), principal
        )
        loop = asyncio.get_running_loop()
        parked.expiry = loop.call_later(self.timeout_s, self._expire_soon, call_id)
        self.calls[call_id] = parked
        request: dict[str, Any] = {"method": need.request.get("method")}
        if need.request.get("params") is not None:
            request["params"] = need.request["params"]
        state = {"i": self.instance, "c": call_id, "p": principal}
        return {
            "resultType": "input_required",
            "inputRequests": {INPUT_KEY: request},
            "requestState": PREFIX + self.signer.dumps(state, self.timeout_s),
        }

    def _expire_soon(self, call_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._expire(call_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, call_id: str) -> None:
        """A retry that never came: close the call and cancel it upstream."""
        parked = self.calls.pop(call_id, None)
        if parked is None:
            return
        if parked.expiry is not None:
            parked.expiry.cancel()
        await parked.upstream.abandon(parked.resp, parked.rid)

    # ---- retries ---------------------------------------------------------------------------

    async def resume(self, params: dict[str, Any], principal: str) -> tuple[dict[str, Any], float]:
        """A client's retry: the call's JSON-RPC reply (from whichever replica holds it)."""
        t0 = time.perf_counter()
        state = self._verify(params.get("requestState"))
        if state.get("p") != principal:
            raise RpcFault(INVALID_PARAMS, "The requestState is not valid.")
        responses = params.get("inputResponses")
        answer = responses.get(INPUT_KEY) if isinstance(responses, dict) else None
        if state.get("i") == self.instance or self.bus is None:
            reply = await self._resume_local(state["c"], answer)
        else:
            subject = f"{subjects.GATEWAY_RETRY}.{state['i']}"
            body = orjson.dumps({"call": state["c"], "answer": answer})
            try:
                msg = await self.bus.ask(subject, body, timeout=self.timeout_s + 5)
                reply = orjson.loads(msg.data)
            except Exception as exc:  # no responder (replica gone), timeout
                raise RpcFault(
                    UPSTREAM_ERROR,
                    f"The call waiting for this retry is gone ({type(exc).__name__}).",
                ) from None
        return well_formed(reply), (time.perf_counter() - t0) * 1000

    async def _remote(self, msg: Any) -> None:
        """A retry routed here by another replica."""
        try:
            doc = orjson.loads(msg.data)
            reply = await self._resume_local(str(doc["call"]), doc.get("answer"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            reply = {"jsonrpc": "2.0", "error": {"code": INVALID_PARAMS, "message": "bad retry"}}
        await msg.respond(orjson.dumps(reply))

    async def _resume_local(self, call_id: str, answer: Any) -> dict[str, Any]:
        """Answer the upstream's pending request; read on to the call's reply (or next park)."""
        parked = self.calls.pop(call_id, None)
        if parked is None:
            message = "The call waiting for this retry is unknown or expired."
            return {"jsonrpc": "2.0", "error": {"code": INVALID_PARAMS, "message": message}}
        if parked.expiry is not None:
            parked.expiry.cancel()
        upstream = parked.upstream
        if isinstance(answer, dict):
            answer_msg = {"jsonrpc": "2.0", "id": parked.request_id, "result": answer}
        else:
            error = {"code": INVALID_PARAMS, "message": "The client sent no answer."}
            answer_msg = {"jsonrpc": "2.0", "id": parked.request_id, "error": error}

        async def on_message(msg: dict[str, Any]) -> None:
            if "id" not in msg:
                return  # notifications: the retrying client has no stream for them here
            if msg.get("method") == "ping":
                await upstream.respond({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
                return
            raise InputNeeded(msg, partial(self.park, parked.server, parked.principal))

        try:
            await upstream.respond(answer_msg)
            async with asyncio.timeout(self.timeout_s):
                return await upstream.resume(parked.resp, parked.rid, on_message)
        except InputNeeded as need:  # the upstream asks again
            return {"jsonrpc": "2.0", "result": await need.park(need)}
        except TimeoutError:
            await upstream.abandon(parked.resp, parked.rid)
            message = f"The server {parked.server.name!r} did not answer in {self.timeout_s:g}s."
            return {"jsonrpc": "2.0", "error": {"code": UPSTREAM_TIMEOUT, "message": message}}
        except TransportFailure as exc:
            message = f"The server {parked.server.name!r} failed: {exc}"
            return {"jsonrpc": "2.0", "error": {"code": UPSTREAM_ERROR, "message": message}}

    # ---- signed state ----------------------------------------------------------------------

    def _verify(self, token: Any) -> dict[str, Any]:
        """The state a genuine, live `requestState` carries; else -32602."""
        if not isinstance(token, str) or not token.startswith(PREFIX):
            raise RpcFault(INVALID_PARAMS, "The requestState is not valid.")
        try:
            state = self.signer.loads(token[len(PREFIX) :])
        except Expired:
            raise RpcFault(INVALID_PARAMS, "The requestState has expired.") from None
        except TokenError:
            raise RpcFault(INVALID_PARAMS, "The requestState is not valid.") from None
        if not isinstance(state, dict) or not isinstance(state.get("c"), str):
            raise RpcFault(INVALID_PARAMS, "The requestState is not valid.")
        return state
