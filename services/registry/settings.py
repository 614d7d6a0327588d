"""The registry's environment settings (`RegistrySettings`); the admin config is config.py."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common import forwarded
from libs.common.settings import Settings, SettingsError, env


@dataclass(frozen=True)
class RegistrySettings(Settings):
    """REGISTRY_* variables and the platform ones."""

    service: ClassVar[str] = "registry"
    default_port: ClassVar[int] = 8102

    # base64 of 32 random bytes; encrypts upstream header/env values and secret settings
    master_key: str = env("REGISTRY_MASTER_KEY", "", secret=True)
    master_key_id: str = env("REGISTRY_MASTER_KEY_ID", "k1")
    # rotation: "kid:base64,kid:base64"; the first seals new values, all open; wins when set
    master_keys: tuple[str, ...] = env("REGISTRY_MASTER_KEYS", (), secret=True)
    # CIDRs an upstream URL may resolve into despite the SSRF rules (until the setting is stored)
    ssrf_allowlist: tuple[str, ...] = env("REGISTRY_SSRF_ALLOWLIST", ())
    # tools that appear on an already discovered server: held until approved (quarantine) or
    # routable at once (auto_approve); the `new_tool_policy` setting wins once stored
    new_tool_policy: str = env("REGISTRY_NEW_TOOL_POLICY", "quarantine")
    health_interval_s: float = env("REGISTRY_HEALTH_INTERVAL_S", 30.0)
    health_concurrency: int = env("REGISTRY_HEALTH_CONCURRENCY", 8)
    health_enabled: bool = env("REGISTRY_HEALTH_ENABLED", True)
    # each healthy remote server is listed in full (tool descriptions compared: rug pulls
    # caught) at least this often; the checks between only open a session. 0: every check lists
    # in full, so a rug pull is caught within one health interval (large fleets may trade that
    # for CPU, docs/REGISTRY.md "Health")
    full_refresh_s: float = env("REGISTRY_FULL_REFRESH_S", 0.0)
    discovery_timeout_s: float = env("REGISTRY_DISCOVERY_TIMEOUT_S", 10.0)
    sandbox_timeout_s: float = env("REGISTRY_SANDBOX_TIMEOUT_S", 5.0)
    llm_timeout_s: float = env("REGISTRY_LLM_TIMEOUT_S", 30.0)
    # the catalog (docs/CATALOG.md): file:// repositories only when allowed (tests, air-gapped)
    catalog_allow_local_git: bool = env("REGISTRY_CATALOG_ALLOW_LOCAL_GIT", False)
    catalog_git_timeout_s: float = env("REGISTRY_CATALOG_GIT_TIMEOUT_S", 60.0)
    catalog_max_tarball_bytes: int = env("REGISTRY_CATALOG_MAX_TARBALL_BYTES", 20 * 1024 * 1024)
    catalog_max_unpacked_bytes: int = env("REGISTRY_CATALOG_MAX_UNPACKED_BYTES", 200 * 1024 * 1024)
    catalog_max_files: int = env("REGISTRY_CATALOG_MAX_FILES", 10_000)
    # anonymous callers of the public catalog, per client address and minute (0: no limit)
    catalog_anon_per_min: int = env("REGISTRY_CATALOG_ANON_PER_MIN", 15)
    # peers whose X-Real-IP names the client (nginx)
    trusted_proxies: tuple[str, ...] = env("REGISTRY_TRUSTED_PROXIES", ("127.0.0.1/32", "::1/128"))
    # how old a Stripe-Signature timestamp may be (either way), against replays
    stripe_tolerance_s: float = env("REGISTRY_STRIPE_TOLERANCE_S", 300.0)
    # catalog scans: how long one sandbox scan may take, and how often an error is retried
    scan_timeout_s: float = env("REGISTRY_SCAN_TIMEOUT_S", 240.0)
    scan_attempts: int = env("REGISTRY_SCAN_ATTEMPTS", 3)

    def __post_init__(self) -> None:
        """Check the values that have a fixed set."""
        super().__post_init__()
        if self.new_tool_policy not in ("quarantine", "auto_approve"):
            raise SettingsError(
                "REGISTRY_NEW_TOOL_POLICY must be quarantine or auto_approve "
                f"(got {self.new_tool_policy!r})"
            )
        try:
            forwarded.parse_networks(self.trusted_proxies)
        except ValueError:
            raise SettingsError(
                f"REGISTRY_TRUSTED_PROXIES must list CIDRs (got {self.trusted_proxies!r})"
            ) from None
