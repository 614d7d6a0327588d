"""Redaction of tool-call arguments before they are stored or relayed: none, keys or full.

One policy for every place arguments go: the gateway applies the registry's `audit_arguments`
setting before it publishes `gateway.tool.called` (so NATS and everything that reads it never
carries more), and audit applies its own (the same setting, as audit last heard it) before it
stores a record or relays one on `/ws/events`. Redacting twice keeps the stricter of the two:
`none` drops the arguments, `keys` keeps names only, `full` masks secret-looking values.
"""

from __future__ import annotations

import re
from typing import Any

POLICIES = ("none", "keys", "full")
MASK = "[redacted]"

SECRET_KEY_RE = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|apikey|auth|credential|cookie|session"
    r"|private[-_]?key|signature|otp",
    re.IGNORECASE,
)
SECRET_VALUE_RES = (
    re.compile(r"^sb[kstab]_[A-Za-z0-9_\-]{8,}$"),  # Switchboard keys and tokens
    re.compile(r"^(sk|pk|rk)[-_][A-Za-z0-9_\-]{16,}$"),  # OpenAI / Stripe style
    re.compile(r"^(ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abpr])[-_][A-Za-z0-9_\-]{10,}$"),
    re.compile(r"^AKIA[0-9A-Z]{16}$"),  # AWS access key id
    re.compile(r"^eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*$"),  # JWT
    re.compile(r"^(bearer|basic)\s+\S{8,}$", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"^[A-Fa-f0-9]{40,}$"),  # long hex (hashes, raw keys)
    re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9+/_\-]{40,}={0,2}$"),  # long base64-ish
)
URL_USERINFO_RE = re.compile(r"(\w+://[^/\s:@]+:)[^@\s/]+@")


def redact(arguments: dict[str, Any] | None, policy: str) -> dict[str, Any] | None:
    """Arguments as stored under `policy`: none → nothing, keys → names only, full → masked.

    An unknown policy counts as `keys`."""
    if arguments is None or policy == "none":
        return None
    if policy == "full":
        return mask(arguments)
    return {str(key): MASK for key in arguments}


def mask(value: Any) -> Any:
    """A deep copy of `value` with secret-looking values (by key or by shape) masked."""
    if isinstance(value, dict):
        return {
            str(k): MASK if _secret_key(k) and _scalar(v) else mask(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return mask_string(value)
    return value


def mask_string(text: str) -> str:
    """The text, or the mask when it looks like a secret; URL passwords are masked in place."""
    stripped = text.strip()
    if any(rx.search(stripped) for rx in SECRET_VALUE_RES):
        return MASK
    return URL_USERINFO_RE.sub(rf"\g<1>{MASK}@", text)


def _secret_key(key: Any) -> bool:
    """True when the key names a secret."""
    return isinstance(key, str) and SECRET_KEY_RE.search(key) is not None


def _scalar(value: Any) -> bool:
    """Secrets are scalars; a dict under `auth` is walked instead of masked whole."""
    return not isinstance(value, (dict, list))
