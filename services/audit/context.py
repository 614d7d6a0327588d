"""What the audit service's handlers share: pool, bus, settings and the live hub."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.requests import HTTPConnection

from libs.common.bus import Bus
from libs.common.verifier import Verifier
from services.audit.live import Hub
from services.audit.settings import AuditSettings


@dataclass(frozen=True)
class AuditContext:
    """The audit service's shared parts, built once in the lifespan."""

    pool: asyncpg.Pool
    bus: Bus
    settings: AuditSettings
    hub: Hub
    verifier: Verifier


def context_of(conn: HTTPConnection) -> AuditContext:
    """Return the audit service's shared parts for a request or WebSocket."""
    return conn.state.audit
