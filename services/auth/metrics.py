"""Auth metrics: sign-ins by outcome, source lockouts, token introspections (bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter

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
