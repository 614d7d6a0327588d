"""Settings of the gateway service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings, SettingsError, env
from libs.common.ssrf import parse_networks
from services.gateway.team_limits import parse_overrides

ENVELOPE_BYTES = 64 * 1024  # a JSON-RPC message around a result of the largest allowed size


@dataclass(frozen=True)
class GatewaySettings(Settings):
    """GATEWAY_* variables and the platform ones."""

    service: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8103

    separator: str = env("GATEWAY_SEPARATOR", "__")
    exposure_mode: str = env("GATEWAY_EXPOSURE_MODE", "")  # all | progressive | "": registry
    upstream_timeout_s: float = env("GATEWAY_UPSTREAM_TIMEOUT_S", 60.0)
    connect_timeout_s: float = env("GATEWAY_CONNECT_TIMEOUT_S", 5.0)
    max_concurrency: int = env("GATEWAY_MAX_CONCURRENCY", 64)
    breaker_failures: int = env("GATEWAY_BREAKER_FAILURES", 5)
    breaker_reset_s: float = env("GATEWAY_BREAKER_RESET_S", 30.0)
    max_result_bytes: int = env("GATEWAY_MAX_RESULT_BYTES", 8 * 1024 * 1024)
    # one SSE event (or JSON body) read from an upstream; 0: the result limit plus 64 KiB
    max_event_bytes: int = env("GATEWAY_MAX_EVENT_BYTES", 0)
    # CIDRs upstream connections may reach despite the SSRF rules, besides the registry's
    # `ssrf_allowlist` setting (which the snapshot carries)
    ssrf_allowlist: tuple[str, ...] = env("GATEWAY_SSRF_ALLOWLIST", ())
    dns_ttl_s: float = env("GATEWAY_DNS_TTL_S", 30.0)  # how long a vetted resolution is reused
    audit_async: bool = env("GATEWAY_AUDIT_ASYNC", False)
    # how long a call's record may take to be stored (NATS restarting) before the call fails
    audit_deadline_s: float = env("GATEWAY_AUDIT_DEADLINE_S", 30.0)
    allowed_origins: tuple[str, ...] = env("GATEWAY_ALLOWED_ORIGINS", ())
    allowed_hosts: tuple[str, ...] = env("GATEWAY_ALLOWED_HOSTS", ())  # besides public, loopback
    list_page_size: int = env("GATEWAY_LIST_PAGE_SIZE", 1000)
    list_ttl_ms: int = env("GATEWAY_LIST_TTL_MS", 10000)
    resync_s: float = env("GATEWAY_RESYNC_S", 300.0)
    gc_freeze: bool = env("GATEWAY_GC_FREEZE", True)  # settle the heap after table changes
    session_secret: str = env("GATEWAY_SESSION_SECRET", "", secret=True)
    session_ttl_s: float = env("GATEWAY_SESSION_TTL_S", 24 * 3600.0)
    task_result_wait_s: float = env("GATEWAY_TASK_RESULT_WAIT_S", 3600.0)  # tasks/result
    task_ttl_s: float = env("GATEWAY_TASK_TTL_S", 7 * 24 * 3600.0)  # task ownership records
    rate_limit_per_min: int = env("GATEWAY_RATE_LIMIT_PER_MIN", 0)  # 0: unlimited
    rate_limit_overrides: tuple[str, ...] = env("GATEWAY_RATE_LIMIT_OVERRIDES", ())  # id=n
    # tool calls one team may run at once on a replica (0: no cap); team=n overrides, 0: none
    team_max_concurrency: int = env("GATEWAY_TEAM_MAX_CONCURRENCY", 0)
    team_concurrency_overrides: tuple[str, ...] = env("GATEWAY_TEAM_CONCURRENCY_OVERRIDES", ())

    @property
    def event_limit(self) -> int:
        """The most bytes of one upstream message (an SSE event or a JSON body) read."""
        return self.max_event_bytes or self.max_result_bytes + ENVELOPE_BYTES

    def __post_init__(self) -> None:
        """Check the allowlist's CIDRs and the team overrides once, at start."""
        super().__post_init__()
        try:
            parse_networks(self.ssrf_allowlist)
        except ValueError as exc:
            raise SettingsError(f"GATEWAY_SSRF_ALLOWLIST: {exc}") from None
        try:
            parse_overrides(self.team_concurrency_overrides)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
