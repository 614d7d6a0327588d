"""Settings of the auth service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings, env


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
    # a user is locked for lockout_s after max_user_failures failures in a row
    max_user_failures: int = env("AUTH_MAX_USER_FAILURES", 5)
    # a source address is locked for lockout_s after max_source_failures in window_s
    max_source_failures: int = env("AUTH_MAX_SOURCE_FAILURES", 20)
    failure_window_s: int = env("AUTH_FAILURE_WINDOW_S", 900)
    lockout_s: int = env("AUTH_LOCKOUT_S", 900)
    # each failure adds this delay (capped at 2 s) before the answer, to slow guessing
    failure_delay_s: float = env("AUTH_FAILURE_DELAY_S", 0.25)
    invite_ttl_s: int = env("AUTH_INVITE_TTL_S", 7 * 24 * 3600)
    cookie_secure: bool = env("AUTH_COOKIE_SECURE", True)
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
    # the access-token lifetime of OAuth tokens is AUTH_ACCESS_TTL_S; their refresh tokens live
    # AUTH_REFRESH_TTL_S like the others

    @property
    def oauth_issuer(self) -> str:
        """The authorization server's issuer identifier (RFC 8414): the public URL."""
        return self.public_url.rstrip("/")

    @property
    def mcp_resource(self) -> str:
        """The gateway's resource URL, the audience of OAuth access tokens (RFC 8707)."""
        return self.oauth_issuer + "/mcp"
