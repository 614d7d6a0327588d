"""Settings of the sandbox service."""

import sys
import sysconfig
from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings, SettingsError, env
from libs.common.ssrf import parse_networks

DEFAULT_WORK_ROOT = ".run/sandbox"  # moved when sandbox uids cannot reach it (layout.py)


def _default_packages() -> str:
    """The service's own site-packages (it carries the MCP SDK hosted Python servers use)."""
    return sysconfig.get_paths()["purelib"] if sys.prefix else ""


@dataclass(frozen=True)
class SandboxSettings(Settings):
    """SANDBOX_* variables and the platform ones."""

    service: ClassVar[str] = "sandbox"
    default_port: ClassVar[int] = 8104

    work_root: str = env("SANDBOX_WORK_ROOT", DEFAULT_WORK_ROOT)
    bwrap: str = env("SANDBOX_BWRAP", "bwrap")
    python: str = env("SANDBOX_PYTHON", "/usr/bin/python3")
    python_packages: str = env("SANDBOX_PYTHON_PACKAGES", _default_packages())
    isolation: str = env("SANDBOX_ISOLATION", "auto")  # auto | bwrap-userns | none
    gvisor: str = env("SANDBOX_GVISOR", "auto")  # auto (read /proc/version) | true | false
    allow_unisolated: bool = env("SANDBOX_ALLOW_UNISOLATED", False)
    # run untrusted code on a tier missing network, file or process separation (status: weak)
    accept_weak_isolation: bool = env("SANDBOX_ACCEPT_WEAK_ISOLATION", False)
    # cap the Landlock ABI the fallback tier uses (0: the kernel's), e.g. 2 to behave as Debian 12
    landlock_abi_max: int = env("SANDBOX_LANDLOCK_ABI_MAX", 0)
    # auto: a cgroup v2 per sandbox (memory.max, pids.max) where the host delegates one; off
    cgroups: str = env("SANDBOX_CGROUPS", "auto")
    # origins whose pages may open /ws/terminal, besides the public URL's
    allowed_origins: tuple[str, ...] = env("SANDBOX_ALLOWED_ORIGINS", ())
    uid_base: int = env("SANDBOX_UID_BASE", 200_000)
    uid_count: int = env("SANDBOX_UID_COUNT", 50_000)
    idle_timeout_s: float = env("SANDBOX_IDLE_TIMEOUT_S", 300.0)
    start_timeout_s: float = env("SANDBOX_START_TIMEOUT_S", 20.0)
    call_timeout_s: float = env("SANDBOX_CALL_TIMEOUT_S", 60.0)
    health_interval_s: float = env("SANDBOX_HEALTH_INTERVAL_S", 30.0)
    max_per_server: int = env("SANDBOX_MAX_PER_SERVER", 8)
    max_total: int = env("SANDBOX_MAX_TOTAL", 64)
    backoff_base_s: float = env("SANDBOX_BACKOFF_BASE_S", 1.0)
    backoff_max_s: float = env("SANDBOX_BACKOFF_MAX_S", 60.0)
    max_restarts: int = env("SANDBOX_MAX_RESTARTS", 5)
    memory_mb: int = env("SANDBOX_MEMORY_MB", 2048)
    cpu_s: int = env("SANDBOX_CPU_S", 3600)
    nofile: int = env("SANDBOX_NOFILE", 256)
    nproc: int = env("SANDBOX_NPROC", 64)
    fsize_mb: int = env("SANDBOX_FSIZE_MB", 64)
    log_lines: int = env("SANDBOX_LOG_LINES", 2000)
    log_bytes: int = env("SANDBOX_LOG_BYTES", 1024 * 1024)  # per server, on each replica
    log_line_bytes: int = env("SANDBOX_LOG_LINE_BYTES", 8192)  # longer lines are cut
    spec_ttl_s: float = env("SANDBOX_SPEC_TTL_S", 30.0)
    # a replica owns a process key while it refreshes the lease (every third of this)
    owner_ttl_s: float = env("SANDBOX_OWNER_TTL_S", 15.0)
    # host paths bound read-only at the same path in every sandbox (e.g. installed servers)
    ro_paths: tuple[str, ...] = env("SANDBOX_RO_PATHS", ())
    max_code_bytes: int = env("SANDBOX_MAX_CODE_BYTES", 256 * 1024)
    code_timeout_s: float = env("SANDBOX_CODE_TIMEOUT_S", 30.0)
    max_file_bytes: int = env("SANDBOX_MAX_FILE_BYTES", 4 * 1024 * 1024)
    max_extract_bytes: int = env("SANDBOX_MAX_EXTRACT_BYTES", 64 * 1024 * 1024)
    # internal CIDRs (loopback, private, the platform's own addresses...) egress may reach anyway
    egress_allow_cidrs: tuple[str, ...] = env("SANDBOX_EGRESS_ALLOW_CIDRS", ())
    # host names or addresses of the other services, refused like Postgres and NATS
    platform_hosts: tuple[str, ...] = env("SANDBOX_PLATFORM_HOSTS", ())
    # catalog scans (docs/CATALOG.md, Scanning): the source tarball, what it may unpack to, and
    # the confined scanner's time and memory
    scan_max_source_bytes: int = env("SANDBOX_SCAN_MAX_SOURCE_BYTES", 32 * 1024 * 1024)
    scan_max_unpacked_bytes: int = env("SANDBOX_SCAN_MAX_UNPACKED_BYTES", 128 * 1024 * 1024)
    scan_max_files: int = env("SANDBOX_SCAN_MAX_FILES", 10_000)
    scan_timeout_s: float = env("SANDBOX_SCAN_TIMEOUT_S", 180.0)
    scan_memory_mb: int = env("SANDBOX_SCAN_MEMORY_MB", 1536)
    # OSV advisories (a directory of OSV JSON records or one JSON list): what scans and module
    # installs are checked against; empty: none known
    osv_advisories_path: str = env("OSV_ADVISORIES_PATH", "")

    def __post_init__(self) -> None:
        """Refuse a malformed CIDR at start, naming the variable."""
        super().__post_init__()
        try:
            parse_networks(self.egress_allow_cidrs)
        except ValueError as exc:
            raise SettingsError(f"SANDBOX_EGRESS_ALLOW_CIDRS: {exc}") from None
