"""The egress gate of every sandbox: allowlists, addresses never opened, refusals recorded.

Each server's allowlist (cached), the addresses no approval may open, and what a refusal records
(an event, and a pending approval when it may be asked)."""

from __future__ import annotations

import time

import asyncpg

from libs.common import outbox
from libs.common.errors import Unprocessable
from libs.common.events import (
    APPROVAL_REQUESTED,
    EGRESS_REFUSED,
    ApprovalChanged,
    EgressRefused,
)
from services.sandbox import addresses, allowlist
from services.sandbox.egress import NOT_ALLOWLISTED
from services.sandbox.policy import PolicyCache
from services.sandbox.settings import SandboxSettings
from services.sandbox.store import SCHEMA
from services.sandbox.store import approvals as approvals_store
from services.sandbox.store import hosts as hosts_store

HOSTS_TTL_S = 5.0


class EgressGate:
    """What the egress proxy asks before it connects, and where its refusals go."""

    def __init__(
        self, pool: asyncpg.Pool, guard: addresses.AddressGuard, policy_cache: PolicyCache
    ) -> None:
        self.pool = pool
        self.guard = guard
        self.policy_cache = policy_cache
        self._hosts: dict[str, tuple[float, list[str]]] = {}

    async def allowed_hosts(self, server: str) -> list[str]:
        """A server's egress allowlist (cached a few seconds)."""
        hit = self._hosts.get(server)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.pool.acquire() as conn:
            hosts = await hosts_store.list_allowed_hosts(conn, server)
        self._hosts[server] = (time.monotonic() + HOSTS_TTL_S, hosts)
        return hosts

    def forget_hosts(self, server: str) -> None:
        """Drop the cached allowlist of a server."""
        self._hosts.pop(server, None)

    async def host_allowed(self, server: str, host: str, port: int) -> bool:
        """True when the server's allowlist names host:port."""
        return allowlist.allows(await self.allowed_hosts(server), host, port)

    def check_hosts(self, hosts: list[str]) -> None:
        """422 for allowlist entries no approval could open (internal or platform addresses)."""
        fields = {}
        for index, host in enumerate(hosts):
            problem = self.guard.literal_problem(allowlist.parse_entry(host).host)
            if problem is not None:
                fields[f"hosts.{index}"] = f"{host!r} is a {problem}"
        if fields:
            raise Unprocessable(
                "Sandboxes may not reach these addresses.", details={"fields": fields}
            )

    def requestable(self, host: str) -> bool:
        """True when a refused host could be approved (a host, not an internal address)."""
        try:
            self.check_hosts([host])
        except (ValueError, Unprocessable):
            return False
        return True

    async def refused(self, server: str, host: str, port: int, reason: str) -> None:
        """Record a refusal: an event, and for some hosts a pending network approval.

        The approval is opened for a host that is merely not on the allowlist (one per host;
        internal addresses open none)."""
        async with self.pool.acquire() as conn, conn.transaction():
            ask = (await self.policy_cache.get(conn)).network_default == "ask"
            ask = ask and reason == NOT_ALLOWLISTED and self.requestable(host)
            row = None
            if ask:
                row = await approvals_store.insert_approval(
                    conn, kind="network", subject=host, server=server, details={"port": port}
                )
            refused = EgressRefused(server=server, host=host, port=port, reason=reason)
            await outbox.enqueue(conn, SCHEMA, EGRESS_REFUSED.event(refused, source=SCHEMA))
            if row is not None:
                approval = ApprovalChanged(
                    id=str(row["id"]),
                    kind="network",
                    subject=host,
                    status="pending",
                    action="request",
                    server=server,
                )
                await outbox.enqueue(
                    conn, SCHEMA, APPROVAL_REQUESTED.event(approval, source=SCHEMA)
                )


def platform_hosts(settings: SandboxSettings) -> tuple[str, ...]:
    """The platform's own endpoints the sandbox knows.

    Postgres, NATS, nginx, itself, and SANDBOX_PLATFORM_HOSTS (the other services)."""
    urls = [settings.database_url, settings.nats_url, settings.public_url]
    return (*addresses.url_hosts(urls), settings.host, *settings.platform_hosts)
