"""Legacy client sessions that any replica can serve, and the list-changed notifier.

A session id is self-contained and signed (`libs/common/signed.py`, purpose "gateway session
id", with a secret shared by every replica through NATS KV or GATEWAY_SESSION_SECRET): it
carries the negotiated protocol version, a fingerprint of the principal, the issue time and its
expiry, so any replica validates it without a shared store or sticky routing. DELETE ends a
session everywhere: the id is broadcast on NATS and each replica keeps it in a deny set until it
would have expired anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from libs.common import subjects
from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.signed import Signer, TokenError

log = structlog.get_logger()

KV_BUCKET = "gateway"
KV_SECRET_KEY = "session-secret"
PURPOSE = "gateway session id"
MAX_OPENED = 100_000  # verified session ids remembered per replica
LIST_CHANGED = tuple(
    {"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"}
    for kind in ("tools", "prompts", "resources")
)


@dataclass(frozen=True)
class SessionInfo:
    """What a legacy session id says."""

    id: str
    protocol: str
    principal: str
    issued_at: float
    client: str | None


@dataclass(frozen=True, slots=True)
class _Opened:
    """A verified session id: what it says, whom it opened for, and until when."""

    info: SessionInfo
    owner: tuple[str, str, str | None]  # kind, id, credential id of the principal it opened for
    until: float  # the token's expiry


def principal_fingerprint(principal: Principal) -> str:
    """A short, stable fingerprint of who owns a session."""
    ident = f"{principal.kind}:{principal.id}:{principal.credential_id or ''}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


class SessionCodec:
    """Issues and checks signed session ids; remembers ended ones."""

    def __init__(self, secret: bytes, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.ttl_s = ttl_s
        self.clock = clock
        self.signer = Signer(secret, PURPOSE)
        self.ended: dict[str, float] = {}
        self._opened: dict[str, _Opened] = {}  # ids verified, by id

    def issue(self, principal: Principal, protocol: str, client: str | None) -> str:
        """A new session id for `principal` at `protocol`."""
        payload = {
            "v": protocol,
            "p": principal_fingerprint(principal),
            "t": int(now := self.clock()),
            "n": secrets.token_hex(8),
            "c": (client or "")[:80],
        }
        return self.signer.dumps(payload, self.ttl_s, now)

    def open(self, session_id: str, principal: Principal) -> SessionInfo | None:
        """The session when the id is genuine, live, not ended and owned by `principal`.

        Every call of a session names it: an id verified once is remembered with its owner until
        the token's expiry, so the next calls of its owner cost a dict lookup, not an HMAC, a
        base64 and a JSON decode and a SHA-256."""
        if session_id in self.ended:
            return None
        now = self.clock()
        owner = (principal.kind, principal.id, principal.credential_id)
        opened = self._opened.get(session_id)
        if opened is not None and now <= opened.until and opened.owner == owner:
            return opened.info
        try:
            doc, until = self.signer.loads_until(session_id, now)
        except TokenError:
            return None
        if not isinstance(doc, dict) or doc.get("p") != principal_fingerprint(principal):
            return None
        info = SessionInfo(session_id, doc["v"], doc["p"], doc["t"], doc.get("c") or None)
        if until > now:
            if len(self._opened) >= MAX_OPENED:
                self._opened.clear()  # bounded; the ids in use are verified once more
            self._opened[session_id] = _Opened(info, owner, until)
        return info

    def end(self, session_id: str) -> None:
        """Remember an ended session (until it would have expired)."""
        now = self.clock()
        self.ended[session_id] = now + self.ttl_s
        self._opened.pop(session_id, None)
        if len(self.ended) > 100_000:
            self.ended = {k: v for k, v in self.ended.items() if v > now}


async def shared_secret(bus: Bus, configured: str) -> bytes:
    """The session secret: configured, else created once in NATS KV and shared by replicas."""
    if configured:
        return configured.encode()
    kv = await bus.key_value(KV_BUCKET)
    try:
        await kv.create(KV_SECRET_KEY, secrets.token_hex(32).encode())
    except Exception:  # another replica created it first
        pass
    entry = await kv.get(KV_SECRET_KEY)
    assert entry.value is not None
    return entry.value


async def follow_ended(bus: Bus, codec: SessionCodec) -> None:
    """Learn about sessions ended on other replicas."""

    async def on_msg(msg: Any) -> None:
        codec.end(msg.data.decode())

    await bus.listen(subjects.GATEWAY_SESSION_ENDED, on_msg)


async def broadcast_ended(bus: Bus, session_id: str) -> None:
    """Tell every replica a session ended."""
    await bus.send(subjects.GATEWAY_SESSION_ENDED, session_id.encode())


class Notifier:
    """Fans list-changed notifications out to open client streams on this replica."""

    def __init__(self, digest: Callable[[], Any] | None = None) -> None:
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.last_change_ns = time.time_ns()
        # what clients can list, digested: events that change none of it announce nothing
        self.digest = digest
        self._last_digest = digest() if digest is not None else None

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every notification from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to `queue`."""
        self.queues.discard(queue)

    async def tools_changed(self) -> None:
        """A registry change: tools, prompts and resources list_changed to every stream."""
        if self.digest is not None:
            digest = self.digest()
            if digest == self._last_digest:
                return
            self._last_digest = digest
        self.last_change_ns = time.time_ns()
        for queue in list(self.queues):
            for message in LIST_CHANGED:
                if not queue.full():
                    queue.put_nowait(message)
