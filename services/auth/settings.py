"""Settings of the auth service."""

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings, SettingsError, env

REGISTRATION_MODES = ("open", "admin", "off")


@dataclass(frozen=True)
class AuthSettings(Settings):
    """AUTH_* variables and the platform ones."""

    service: ClassVar[str] = "auth"
    default_port: ClassVar[int] = 8101

    access_ttl_s: int = env("AUTH_ACCESS_TTL_S", 900)
    refresh_ttl_s: int = env("AUTH_REFRESH_TTL_S", 30 * 24 * 3600)
    session_ttl_s: int = env("AUTH_SESSION_TTL_S", 12 * 3600)
    # encrypts signing keys at rest (AES-GCM, key = SHA-256 of this); empty → stored unencrypted
    key_encryption_secret: str = env("AUTH_KEY_ENCRYPTION_SECRET", "", secret=True)
    argon2_time_cost: int = env("AUTH_ARGON2_TIME_COST", 3)
    argon2_memory_kib: int = env("AUTH_ARGON2_MEMORY_KIB", 65536)
    argon2_parallelism: int = env("AUTH_ARGON2_PARALLELISM", 2)
    password_min_length: int = env("AUTH_PASSWORD_MIN_LENGTH", 10)
    # a sign-in name (known or not) with max_user_failures failures in a row gets one attempt
    # per account_delay_s, each answered after that delay; never a lock
    max_user_failures: int = env("AUTH_MAX_USER_FAILURES", 5)
    account_delay_s: float = env("AUTH_ACCOUNT_DELAY_S", 5.0)
    # a source address is locked for lockout_s after max_source_failures in window_s
    max_source_failures: int = env("AUTH_MAX_SOURCE_FAILURES", 20)
    failure_window_s: int = env("AUTH_FAILURE_WINDOW_S", 900)
    lockout_s: int = env("AUTH_LOCKOUT_S", 900)
    # each failure from a source adds this delay (capped at 2 s) before the answer
    failure_delay_s: float = env("AUTH_FAILURE_DELAY_S", 0.25)
    # the proxies (nginx) whose X-Real-IP names the client; anyone else is its own source
    trusted_proxies: tuple[str, ...] = env("AUTH_TRUSTED_PROXIES", ("127.0.0.1/32", "::1/128"))
    invite_ttl_s: int = env("AUTH_INVITE_TTL_S", 7 * 24 * 3600)
    # first start: create the platform admin unless one exists (the password is printed once
    # to stderr when SWITCHBOARD_ADMIN_PASSWORD is not set)
    bootstrap_admin: bool = env("AUTH_BOOTSTRAP_ADMIN", True)
    admin_user: str = env("SWITCHBOARD_ADMIN_USER", "admin")
    admin_password: str = env("SWITCHBOARD_ADMIN_PASSWORD", "", secret=True)
    # the admin token (sba_...) to install at start when set (rotate it via the API afterwards)
    admin_token: str = env("SWITCHBOARD_ADMIN_TOKEN", "", secret=True)
    # OAuth 2.1 for MCP clients: the issuer is the public URL (platform setting
    # SWITCHBOARD_PUBLIC_URL); tokens are for <public_url>/mcp
    oauth_code_ttl_s: int = env("AUTH_OAUTH_CODE_TTL_S", 120)
    # dynamic client registration (RFC 7591): open (anyone; at most registrations_per_hour per
    # source address), admin (a platform admin's credential as the initial access token), off
    oauth_registration: str = env("AUTH_OAUTH_REGISTRATION", "open")
    oauth_registrations_per_hour: int = env("AUTH_OAUTH_REGISTRATIONS_PER_HOUR", 20)
    # the access-token lifetime of OAuth tokens is AUTH_ACCESS_TTL_S; their refresh tokens live
    # AUTH_REFRESH_TTL_S like the others
    # the JWT signing key should be rotated (POST /api/v1/auth/signing-keys/rotate) before it is
    # this old: /metrics exports both, and SwitchboardSigningKeyOverdue compares them
    signing_key_rotation_days: int = env("AUTH_SIGNING_KEY_ROTATION_DAYS", 90)
    # how long the credential-expiry and key-age figures of /metrics are kept between reads
    credential_metrics_s: float = env("AUTH_CREDENTIAL_METRICS_S", 60.0)

    def __post_init__(self) -> None:
        """Check the values that have a fixed set or form."""
        super().__post_init__()
        if self.oauth_registration not in REGISTRATION_MODES:
            raise SettingsError(
                f"AUTH_OAUTH_REGISTRATION must be one of {', '.join(REGISTRATION_MODES)}"
                f" (got {self.oauth_registration!r})"
            )
        if self.signing_key_rotation_days < 1:
            raise SettingsError(
                "AUTH_SIGNING_KEY_ROTATION_DAYS must be at least 1"
                f" (got {self.signing_key_rotation_days})"
            )
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise SettingsError(
                    f"AUTH_TRUSTED_PROXIES must list CIDRs (got {cidr!r})"
                ) from None

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """AUTH_TRUSTED_PROXIES as networks."""
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.trusted_proxies)

    @property
    def oauth_issuer(self) -> str:
        """The authorization server's issuer identifier (RFC 8414): the public URL."""
        return self.public_url.rstrip("/")

    @property
    def mcp_resource(self) -> str:
        """The gateway's resource URL, the audience of OAuth access tokens (RFC 8707)."""
        return self.oauth_issuer + "/mcp"
