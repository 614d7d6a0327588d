"""Settings of the registry service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings, env


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
    health_interval_s: float = env("REGISTRY_HEALTH_INTERVAL_S", 30.0)
    health_concurrency: int = env("REGISTRY_HEALTH_CONCURRENCY", 8)
    health_enabled: bool = env("REGISTRY_HEALTH_ENABLED", True)
    discovery_timeout_s: float = env("REGISTRY_DISCOVERY_TIMEOUT_S", 10.0)
    sandbox_timeout_s: float = env("REGISTRY_SANDBOX_TIMEOUT_S", 5.0)
    llm_timeout_s: float = env("REGISTRY_LLM_TIMEOUT_S", 30.0)
