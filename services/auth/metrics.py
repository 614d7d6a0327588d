"""Auth metrics: sign-ins, lockouts, introspections; credential expiry and signing-key age.

The expiry and key-age gauges are read from auth's tables when Prometheus scrapes, at most once
per AUTH_CREDENTIAL_METRICS_S (60 s; libs/common/scraped.py), never on a request. They are
platform-wide counts: no org or user label."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from libs.common import scraped
from services.auth.store import credentials, signing_keys

LOGIN_OUTCOMES = (
    "succeeded",
    "failed",
    "locked",
    "paced",
    "mfa_required",
)
LOGINS = Counter(
    "switchboard_auth_logins_total",
    "Password sign-ins by outcome: succeeded, failed (bad password, unknown user, bad one-time "
    "code, not active), locked (source locked), paced (name paced), mfa_required.",
    ["outcome"],
)
LOCKOUTS = Counter(
    "switchboard_auth_lockouts_total",
    "Source addresses locked out after too many failed sign-ins.",
)
TOKEN_KINDS = ("opaque", "session")
TOKEN_VERIFICATIONS = Counter(
    "switchboard_auth_token_verifications_total",
    "Credential introspections (rpc.auth.introspect and auth's own) by kind (opaque: API key or "
    "OAuth token by hash; session: a JWT's user and session) and outcome (valid, rejected, error).",
    ["kind", "outcome"],
)

_LOGINS = {outcome: LOGINS.labels(outcome) for outcome in LOGIN_OUTCOMES}
_VERIFICATIONS = {
    (kind, outcome): TOKEN_VERIFICATIONS.labels(kind, outcome)
    for kind in TOKEN_KINDS
    for outcome in ("valid", "rejected", "error")
}


def login(outcome: str) -> None:
    """Count one sign-in attempt (outcome is one of LOGIN_OUTCOMES)."""
    _LOGINS[outcome].inc()


def verification(kind: str, outcome: str) -> None:
    """Count one introspection."""
    _VERIFICATIONS[(kind, outcome)].inc()


CREDENTIAL_KINDS = ("api_key", "service_token")
EXPIRY_WINDOW = timedelta(days=7)
CREDENTIALS = scraped.register(
    scraped.Scraped(
        "auth-credentials",
        (
            scraped.Family(
                "switchboard_auth_credentials_expiring",
                "Live API keys and service tokens (kind) that expire within 7 days.",
                ("kind",),
            ),
            scraped.Family(
                "switchboard_auth_credential_next_expiry_seconds",
                "Seconds until the soonest live credential of the kind expires (+Inf: none do).",
                ("kind",),
            ),
            scraped.Family(
                "switchboard_auth_signing_key_age_seconds",
                "Age of the active JWT signing key (rotated by POST /api/v1/auth/signing-keys/"
                "rotate).",
            ),
            scraped.Family(
                "switchboard_auth_signing_key_rotation_period_seconds",
                "How old the signing key may grow before it should be rotated "
                "(AUTH_SIGNING_KEY_ROTATION_DAYS).",
            ),
        ),
        ttl_s=60.0,
    )
)


def watch_credentials(pool: Any, rotation_days: int, ttl_s: float) -> scraped.Reader:
    """Export the expiry and signing-key figures of this pool's database from now on."""

    async def read() -> scraped.Samples:
        return await read_credentials(pool, rotation_days)

    CREDENTIALS.attach(read, ttl_s)
    return read


async def read_credentials(pool: Any, rotation_days: int) -> scraped.Samples:
    """Credentials expiring within EXPIRY_WINDOW by kind, and the active signing key's age."""
    async with pool.acquire() as conn:
        rows = await credentials.count_expiring(conn, EXPIRY_WINDOW)
        key = await signing_keys.get_active(conn)
    now = datetime.now(UTC)
    by_kind = {row["kind"]: row for row in rows}
    expiring, soonest = [], []
    for kind in CREDENTIAL_KINDS:
        row = by_kind.get(kind)
        expiring.append(((kind,), float(row["expiring"] if row else 0)))
        nearest = row["soonest"] if row else None
        left = (nearest - now).total_seconds() if nearest is not None else math.inf
        soonest.append(((kind,), left))
    out: scraped.Samples = {
        "switchboard_auth_credentials_expiring": expiring,
        "switchboard_auth_credential_next_expiry_seconds": soonest,
        "switchboard_auth_signing_key_rotation_period_seconds": [((), rotation_days * 86400.0)],
    }
    if key is not None:
        age = (now - key["created_at"]).total_seconds()
        out["switchboard_auth_signing_key_age_seconds"] = [((), age)]
    return out
