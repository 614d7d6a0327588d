"""The anonymous limit of the public catalog: per client address and minute, across replicas."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from libs.common import forwarded
from libs.common.authn import credential_from
from libs.common.bus import Bus
from libs.common.errors import ApiError, RateLimited
from libs.common.rate_windows import SharedWindows, Verdict
from services.registry.settings import RegistrySettings

KV_BUCKET = "registry_catalog_ratelimit"
REJECTED = Counter(
    "switchboard_registry_catalog_rate_limited_total",
    "Anonymous public catalog requests refused by the per-address limit.",
)
Handler = Callable[[Request], Awaitable[Response]]


class AnonymousLimit:
    """15 requests a minute (REGISTRY_CATALOG_ANON_PER_MIN) per anonymous client address."""

    def __init__(self, bus: Bus | None, settings: RegistrySettings) -> None:
        self.per_min = settings.catalog_anon_per_min
        self.trusted = forwarded.parse_networks(settings.trusted_proxies)
        self.windows = SharedWindows(bus, KV_BUCKET)

    async def start(self) -> None:
        """Open the KV bucket."""
        if self.per_min > 0:
            await self.windows.start()

    async def check(self, request: Request) -> Verdict | None:
        """Spend a token of an anonymous caller's address; None for authenticated callers."""
        if self.per_min <= 0 or credential_from(request)[0] is not None:
            return None
        address = forwarded.client_address(request, self.trusted)
        return await self.windows.spend(address, self.per_min)


def public(handler: Handler) -> Handler:
    """Wrap a public catalog handler: the anonymous limit, `X-RateLimit-*` on every answer."""

    @functools.wraps(handler)
    async def limited(request: Request) -> Response:
        limit: AnonymousLimit | None = getattr(request.state, "catalog_limit", None)
        verdict = await limit.check(request) if limit is not None else None
        if verdict is not None and not verdict.allowed:
            REJECTED.inc()
            raise RateLimited(
                f"Anonymous callers may make {verdict.limit} requests a minute; "
                f"retry in {verdict.retry_after} s or authenticate.",
                details={"limit": verdict.limit, "retry_after_s": verdict.retry_after},
                headers=verdict.headers(),
            )
        try:
            response = await handler(request)
        except ApiError as exc:
            if verdict is not None:
                exc.headers = {**exc.headers, **verdict.headers()}
            raise
        if verdict is not None:
            response.headers.update(verdict.headers())
        return response

    return limited
