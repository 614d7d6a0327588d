"""Fixed-window rate limits that hold across replicas: token leases taken from NATS KV.

Each identity has one counter per fixed window (a minute) in a KV bucket, key
`w{window}.{sha256(identity)}`. A replica never counts a request globally one by one: it
*reserves* a lease of tokens with a compare-and-set on that counter (never past the limit), then
spends the lease locally, in memory, with no I/O. Only when its lease is spent does it go back to
KV. So the limit is never exceeded across replicas, the hot path costs one KV round trip per
lease (1 in `lease` requests), and the price is under-admission: tokens leased by one replica and
not spent before the window ends are lost to the others (at most `replicas × lease`). The lease is
limit/20, from 1 to 50. When KV is unreachable the replica fails open (admits, logs), since a
service must keep serving when NATS blips. The gateway (per principal) and the registry's public
catalog (per anonymous client address) use it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass, field

import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from libs.common.bus import Bus

log = structlog.get_logger()

CAS_ATTEMPTS = 20


@dataclass
class Verdict:
    """The outcome of one check, rendered as headers."""

    limit: int
    remaining: int
    reset_s: float
    allowed: bool

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window resets."""
        return max(1, math.ceil(self.reset_s))

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-*` (reset in seconds from now), plus `Retry-After` when refused."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(max(0, math.ceil(self.reset_s))),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


@dataclass
class _Window:
    """What this replica knows about one identity in one window."""

    window: int
    lease: int = 0  # tokens reserved in KV and not spent yet
    seen: int = 0  # the KV counter after our last reservation (all replicas' usage)
    exhausted: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SharedWindows:
    """Per-identity fixed windows whose counters live in the KV bucket `bucket`."""

    def __init__(self, bus: Bus | None, bucket: str, window_s: float = 60.0) -> None:
        self.bus = bus
        self.bucket = bucket
        self.window_s = window_s
        self._state: dict[str, _Window] = {}
        self._kv = None
        self.kv_requests = 0

    async def start(self) -> None:
        """Open (or create) the KV bucket; entries expire two windows after their last update."""
        if self.bus is not None:
            self._kv = await self.bus.key_value(self.bucket, ttl_s=2 * self.window_s)

    async def spend(self, identity: str, limit: int) -> Verdict:
        """Spend one token of the identity's current window (limit > 0)."""
        now = time.time()
        window = int(now // self.window_s)
        reset_s = (window + 1) * self.window_s - now
        state = self._window(identity, window)
        if state.lease == 0 and not state.exhausted:
            async with state.lock:
                if state.lease == 0 and not state.exhausted:
                    await self._reserve(state, identity, limit)
        if state.lease > 0:
            state.lease -= 1
            return Verdict(limit, limit - state.seen + state.lease, reset_s, True)
        return Verdict(limit, 0, reset_s, False)

    def _window(self, identity: str, window: int) -> _Window:
        """This replica's state for the identity's current window."""
        state = self._state.get(identity)
        if state is None or state.window != window:
            if len(self._state) > 100_000:
                self._state = {k: v for k, v in self._state.items() if v.window == window}
            state = self._state[identity] = _Window(window)
        return state

    @staticmethod
    def lease_size(limit: int) -> int:
        """Tokens one reservation takes."""
        return max(1, min(limit // 20, 50))

    async def _reserve(self, state: _Window, identity: str, limit: int) -> None:
        """Take a lease from the shared counter with compare-and-set, never past the limit."""
        want = self.lease_size(limit)
        if self._kv is None:
            state.lease, state.seen = want, 0
            return
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        key = f"w{state.window}.{digest}"
        try:
            for _ in range(CAS_ATTEMPTS):
                self.kv_requests += 1
                try:
                    entry = await self._kv.get(key)
                    used, revision = int(entry.value or b"0"), entry.revision
                except KeyNotFoundError:
                    used, revision = 0, None
                grant = min(want, limit - used)
                if grant <= 0:
                    state.seen, state.exhausted = used, True
                    return
                try:
                    if revision is None:
                        await self._kv.create(key, str(used + grant).encode())
                    else:
                        await self._kv.update(key, str(used + grant).encode(), last=revision)
                except KeyWrongLastSequenceError:
                    continue  # another replica moved the counter: read it again
                state.lease, state.seen = grant, used + grant
                return
            log.warning("rate_limit_contended", bucket=self.bucket)
        except Exception as exc:
            log.warning("rate_limit_kv_unavailable", bucket=self.bucket, error=str(exc))
        state.lease, state.seen = want, state.seen  # fail open for one lease
