"""A steady load of `tools/call` through nginx, in both MCP generations, every answer judged.

An answer is a result, a clean JSON-RPC error, or not clean (an HTML page, a bare 5xx, a hang, a
reset)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field

import httpx

from tests.acceptance.wire import (
    SESSION_REVISION,
    LegacySession,
    is_json_rpc_error,
    message,
    traceparent,
)
from tests.e2e.gateway_support import MODERN, call_tool

CALL_TIMEOUT_S = 30.0  # an answer slower than this is a hang
PACE_S = 0.05  # each worker's pause between requests: a steady load, not a flood
SESSION_GONE = -32004  # the gateway no longer knows the session: initialize again


@dataclass(frozen=True)
class Outcome:
    """One request of the load and what came back."""

    generation: str
    method: str
    tool: str  # as /mcp names it: {server}__{tool}
    trace: str  # the W3C trace id it carried (its audit record keeps it)
    phase: str  # the phase its answer came in: a call in flight when a fault struck is that fault's
    at: float  # when it was sent, in seconds since the load started
    verdict: str  # ok | error (a clean JSON-RPC error) | unclean
    code: int | None = None  # the JSON-RPC error code
    detail: str = ""


@dataclass
class Load:
    """Workers calling `tool` (argument `city`; it answers `21C in {city}`) through nginx."""

    base_url: str
    key: str
    tool: str
    phase: str = "steady"
    outcomes: list[Outcome] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)

    def count(self, phase: str, verdict: str | None = None) -> int:
        """How many answers came in `phase` (with `verdict`)."""
        return sum(1 for o in self.outcomes if o.phase == phase and verdict in (None, o.verdict))

    async def until(self, phase: str, n: int, verdict: str | None, wait_s: float) -> bool:
        """Wait until `n` answers (with `verdict`) came in `phase`; False when `wait_s` passed."""
        try:
            async with asyncio.timeout(wait_s):
                while self.count(phase, verdict) < n:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    def summary(self) -> dict[str, dict[str, int]]:
        """Verdicts per phase."""
        out: dict[str, Counter[str]] = {}
        for o in self.outcomes:
            out.setdefault(o.phase, Counter())[o.verdict] += 1
        return {phase: dict(counts) for phase, counts in out.items()}

    async def run(self, workers_per_generation: int = 2) -> None:
        """Run the workers until stop()."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=CALL_TIMEOUT_S) as http:
            await asyncio.gather(
                *(self._modern(http) for _ in range(workers_per_generation)),
                *(self._legacy(http) for _ in range(workers_per_generation)),
            )

    def stop(self) -> None:
        """Let every worker finish its current request and end."""
        self.stopping.set()

    async def once(self, tool: str, key: str | None = None) -> Outcome:
        """One 2026-07-28 call of `tool` on its own connection, judged and counted like the load's.

        The connection uses `key`, else the load's."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=CALL_TIMEOUT_S) as http:
            trace = secrets.token_hex(16)
            city = f"c{trace[:12]}"
            request = call_tool(http, "", key or self.key, tool, {"city": city}, traceparent(trace))
            outcome, _ = await self._send(MODERN, "tools/call", tool, trace, city, request)
            return outcome

    async def _send(
        self,
        generation: str,
        method: str,
        tool: str,
        trace: str,
        city: str,
        request: Awaitable[object],
    ) -> tuple[Outcome, httpx.Response | None]:
        """Send one request, judge its answer and record the outcome."""
        at = round(time.monotonic() - self.started, 3)
        resp: httpx.Response | None = None
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S + 5):
                answer = await request
        except (TimeoutError, httpx.HTTPError) as exc:
            kind = "hang" if isinstance(exc, TimeoutError | httpx.TimeoutException) else "reset"
            verdict, code, detail = "unclean", None, f"{kind} {exc!r}"
        else:
            rid, resp = answer if isinstance(answer, tuple) else (1, answer)
            verdict, code, detail = judge(method, city, rid, resp)
        outcome = Outcome(generation, method, tool, trace, self.phase, at, verdict, code, detail)
        self.outcomes.append(outcome)
        self.changed.set()
        return outcome, resp

    async def _modern(self, http: httpx.AsyncClient) -> None:
        """2026-07-28: every call stands alone."""
        while not self.stopping.is_set():
            trace = secrets.token_hex(16)
            city = f"c{trace[:12]}"
            args = {"city": city}
            request = call_tool(http, "", self.key, self.tool, args, traceparent(trace))
            await self._send(MODERN, "tools/call", self.tool, trace, city, request)
            await asyncio.sleep(PACE_S)

    async def _legacy(self, http: httpx.AsyncClient) -> None:
        """A 2025 session: initialize (again when the gateway no longer knows it), then calls."""
        session: LegacySession | None = None
        while not self.stopping.is_set():
            trace = secrets.token_hex(16)
            city = f"c{trace[:12]}"
            if session is None or session.session_id is None:
                session = LegacySession(http, self.key)
                outcome, resp = await self._send(
                    SESSION_REVISION, "initialize", "", trace, city, session.initialize()
                )
                if outcome.verdict == "ok" and resp is not None:
                    await session.initialized(resp)
            else:
                request = session.call(self.tool, {"city": city}, traceparent(trace))
                outcome, _ = await self._send(
                    SESSION_REVISION, "tools/call", self.tool, trace, city, request
                )
                if outcome.code == SESSION_GONE:
                    session = None
            await asyncio.sleep(PACE_S)


def judge(method: str, city: str, rid: int, resp: httpx.Response) -> tuple[str, int | None, str]:
    """The verdict on one answer: (verdict, JSON-RPC error code, what came back)."""
    doc = message(resp, rid)
    if doc is not None and "result" in doc:
        content = (doc["result"].get("content") or [{}])[0].get("text")
        if method != "tools/call" or content == f"21C in {city}":
            return "ok", None, ""
    if doc is not None and is_json_rpc_error(doc):
        error = doc["error"]
        return (
            "error",
            error["code"],
            f"HTTP {resp.status_code}: {error['code']} {error['message']}",
        )
    kind = resp.headers.get("content-type", "")
    return "unclean", None, f"HTTP {resp.status_code} {kind}: {resp.text[:300]!r}"
