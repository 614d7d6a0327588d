"""Settings of the audit service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.redaction import POLICIES
from libs.common.settings import Settings, SettingsError, env
from libs.common.ssrf import parse_networks


@dataclass(frozen=True)
class AuditSettings(Settings):
    """AUDIT_* variables and the platform ones."""

    service: ClassVar[str] = "audit"
    default_port: ClassVar[int] = 8105

    arguments: str = env("AUDIT_ARGUMENTS", "keys")  # none | keys | full (secrets masked)
    ack_wait_s: float = env("AUDIT_ACK_WAIT_S", 30.0)
    retention_days: int = env("AUDIT_RETENTION_DAYS", 90)
    retention_batch: int = env("AUDIT_RETENTION_BATCH", 5000)
    retention_interval_s: float = env("AUDIT_RETENTION_INTERVAL_S", 3600.0)
    alert_interval_s: float = env("AUDIT_ALERT_INTERVAL_S", 15.0)
    alert_webhook_url: str = env("AUDIT_ALERT_WEBHOOK_URL", "")
    # CIDRs webhooks may reach despite the SSRF rules (a receiver on the local network)
    ssrf_allowlist: tuple[str, ...] = env("AUDIT_SSRF_ALLOWLIST", ())
    # origins whose pages may open /ws/events and /ws/health_status, besides the public URL's
    allowed_origins: tuple[str, ...] = env("AUDIT_ALLOWED_ORIGINS", ())
    ws_queue: int = env("AUDIT_WS_QUEUE", 256)
    ws_ping_s: float = env("AUDIT_WS_PING_S", 20.0)
    ws_auth_timeout_s: float = env("AUDIT_WS_AUTH_TIMEOUT_S", 10.0)
    monitoring_interval_s: float = env("AUDIT_MONITORING_INTERVAL_S", 5.0)
    health_interval_s: float = env("AUDIT_HEALTH_INTERVAL_S", 2.0)
    # the services' own WARNING+ log lines kept for GET /api/v1/monitoring/logs (newest)
    system_logs_kept: int = env("AUDIT_SYSTEM_LOGS_KEPT", 10000)
    # how often the audit-store consumer's lag is read for /metrics (not per message)
    lag_interval_s: float = env("AUDIT_LAG_INTERVAL_S", 15.0)
    # how long the Postgres and JetStream figures of /metrics are kept before a scrape reads
    # them again (services/audit/platform_metrics.py)
    platform_metrics_s: float = env("AUDIT_PLATFORM_METRICS_S", 15.0)
    # after a fetch smaller than a full batch, wait this long before the next: at low rates calls
    # are stored in batches (each waits at most this), not one transaction each
    batch_linger_ms: float = env("AUDIT_BATCH_LINGER_MS", 20.0)

    def __post_init__(self) -> None:
        """Check the values that have a fixed set or range."""
        super().__post_init__()
        if self.arguments not in POLICIES:
            raise SettingsError(
                f"AUDIT_ARGUMENTS must be one of {', '.join(POLICIES)} (got {self.arguments!r})"
            )
        if self.retention_days < 1:
            raise SettingsError(
                f"AUDIT_RETENTION_DAYS must be at least 1 (got {self.retention_days})"
            )
        try:
            parse_networks(self.ssrf_allowlist)
        except ValueError as exc:
            raise SettingsError(f"AUDIT_SSRF_ALLOWLIST: {exc}") from None
        if not 0 <= self.batch_linger_ms <= 1000:
            raise SettingsError(
                f"AUDIT_BATCH_LINGER_MS must be from 0 to 1000 (got {self.batch_linger_ms:g})"
            )
        if self.ws_queue < 1:
            raise SettingsError(f"AUDIT_WS_QUEUE must be at least 1 (got {self.ws_queue})")
