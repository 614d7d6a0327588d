"""Per-principal rate limits of the gateway, shared across replicas through NATS KV leases.

The windows and leases are libs/common/rate_windows.py (bucket `gateway_ratelimit`); this module
chooses each principal's limit and turns a refusal into the JSON-RPC error.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.rate_windows import SharedWindows, Verdict
from services.gateway.jsonrpc import RATE_LIMITED, RpcFault

KV_BUCKET = "gateway_ratelimit"
__all__ = ["KV_BUCKET", "RateLimiter", "Verdict", "parse_overrides", "rate_limit"]


def parse_overrides(entries: tuple[str, ...] | list[str] | str) -> dict[str, int]:
    """`id=limit` entries (principal or credential id) → {id: limit}; bad entries are refused."""
    if isinstance(entries, str):
        entries = [e for e in entries.split(",") if e.strip()]
    out: dict[str, int] = {}
    for entry in entries:
        key, sep, value = entry.strip().rpartition("=")
        if not sep or not key or not (value.strip().isascii() and value.strip().isdigit()):
            raise ValueError(f"GATEWAY_RATE_LIMIT_OVERRIDES entry {entry!r} is not id=limit")
        out[key.strip()] = int(value)
    return out


class RateLimiter:
    """Fixed-window limits per principal id, shared through NATS KV leases."""

    def __init__(
        self,
        bus: Bus | None,
        per_min: int,
        overrides: dict[str, int] | None = None,
        window_s: float = 60.0,
    ) -> None:
        self.bus = bus
        self.per_min = per_min
        self.overrides = overrides or {}
        self.window_s = window_s
        self.enabled = per_min > 0 or any(v > 0 for v in self.overrides.values())
        self.windows = SharedWindows(bus, KV_BUCKET, window_s)

    @property
    def kv_requests(self) -> int:
        """KV round trips so far (tests read it to see the hot path stays local)."""
        return self.windows.kv_requests

    async def start(self) -> None:
        """Open (or create) the KV bucket; entries expire two windows after their last update."""
        if self.enabled:
            await self.windows.start()

    def limit_for(self, principal: Principal) -> int:
        """The per-window limit: the credential's override, the principal's, else the default."""
        if principal.credential_id and principal.credential_id in self.overrides:
            return self.overrides[principal.credential_id]
        return self.overrides.get(principal.id, self.per_min)

    async def check(self, principal: Principal) -> Verdict | None:
        """Spend one token of the principal's window; None when no limit applies."""
        if not self.enabled:
            return None
        limit = self.limit_for(principal)
        if limit <= 0:
            return None
        return await self.windows.spend(principal.id, limit)


async def rate_limit(request: Request, principal: Principal, limiter: RateLimiter | None) -> None:
    """Spend one of the principal's tokens; over the limit → -32029 (HTTP 429, Retry-After)."""
    if limiter is None or not limiter.enabled:
        return
    verdict = await limiter.check(principal)
    if verdict is None:
        return
    request.state.rate_verdict = verdict
    if not verdict.allowed:
        raise RpcFault(
            RATE_LIMITED,
            f"Rate limit of {verdict.limit} requests per minute exceeded; "
            f"retry in {verdict.retry_after} s.",
            {"limit": verdict.limit, "retry_after_s": verdict.retry_after},
        )


def with_rate_headers(request: Request, response: Response) -> Response:
    """Add the X-RateLimit-* (and Retry-After) headers of this request's verdict."""
    # the state's dict, read directly: a miss on `request.state` raises and catches an error
    verdict: Verdict | None = request.scope.get("state", {}).get("rate_verdict")
    if verdict is not None:
        response.headers.update(verdict.headers())
    return response
