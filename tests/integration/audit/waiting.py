"""Conditions the audit tests wait for (with `libs.devstack.harness.until`)."""

from __future__ import annotations

import nats


async def consumer_idle(url: str, namespace: str) -> bool:
    """The durable consumer has nothing pending and nothing awaiting an ack."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(f"{namespace}_EVENTS", "audit-store")
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await nc.close()
