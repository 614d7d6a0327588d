"""Settings of the sandbox service."""

import sys
import sysconfig
from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings, env

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
    spec_ttl_s: float = env("SANDBOX_SPEC_TTL_S", 30.0)
    # a replica owns a process key while it refreshes the lease (every third of this)
    owner_ttl_s: float = env("SANDBOX_OWNER_TTL_S", 15.0)
    # host paths bound read-only at the same path in every sandbox (e.g. installed servers)
    ro_paths: tuple[str, ...] = env("SANDBOX_RO_PATHS", ())
    max_code_bytes: int = env("SANDBOX_MAX_CODE_BYTES", 256 * 1024)
    code_timeout_s: float = env("SANDBOX_CODE_TIMEOUT_S", 30.0)
    max_file_bytes: int = env("SANDBOX_MAX_FILE_BYTES", 4 * 1024 * 1024)
    max_extract_bytes: int = env("SANDBOX_MAX_EXTRACT_BYTES", 64 * 1024 * 1024)
