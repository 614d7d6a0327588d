"""The stack boots as `make run` boots it, from the private copy, and every service comes up."""

from __future__ import annotations

import os
from pathlib import Path

from libs.devstack.services import SERVICES
from tests.acceptance.platform_boot import Platform

PLATFORM_VARIABLES = ("DATABASE_URL", "NATS_URL", "LOG_LEVEL", "SWITCHBOARD_")
# what `make run` sets (libs/devstack/launch.py, stack.py, services.py), and the one variable
# the suite adds (tests/acceptance/platform_boot.py says why)
MAKE_RUN_SETS = {
    "NATS_URL",
    "SWITCHBOARD_NAMESPACE",
    "SWITCHBOARD_PUBLIC_URL",
    "SWITCHBOARD_ADMIN_USER",
    "SWITCHBOARD_ADMIN_PASSWORD",
    "SWITCHBOARD_DRAIN_S",
    "SWITCHBOARD_INSTANCE",
    "REGISTRY_SSRF_ALLOWLIST",
    "AUDIT_SSRF_ALLOWLIST",
    "REGISTRY_MASTER_KEY",
    "SWITCHBOARD_COOKIE_SECURE",
    "AUTH_KEY_ENCRYPTION_SECRET",
    *(f"{s.upper()}_{part}" for s in SERVICES for part in ("HOST", "PORT")),
}
# each service's own credentials: its database role's URL and its NATS user (no DATABASE_URL:
# the admin role's URL reaches no service)
OWN_CREDENTIALS = ("DATABASE_URL", "NATS_USER", "NATS_PASSWORD")
SUITE_ADDS = {"SANDBOX_RO_PATHS"}


def settings_in(pid: int) -> set[str]:
    """Names of the platform's settings variables in a process's environment."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in raw if b"=" in entry}
    prefixes = PLATFORM_VARIABLES + tuple(f"{s.upper()}_" for s in SERVICES)
    return {name for name in names if name.startswith(prefixes)}


async def test_make_run_boots_all_five_services_from_a_0700_copy_on_uvloop(
    platform: Platform,
) -> None:
    assert platform.boot_error is None, f"boot: every service starts: {platform.boot_error}"
    assert platform.root.parent.stat().st_mode & 0o777 == 0o700, "boot: the copy is in a 0700 dir"
    python = str(platform.root / ".venv" / "bin" / "python")
    for replica in [r for r in platform.stack.replicas if r.alive()]:
        pid = replica.process.pid
        what = f"boot: {replica.instance} (pid {pid})"
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert argv == [python, "-m", f"services.{replica.service}"], f"{what}: argv {argv}"
        assert os.readlink(f"/proc/{pid}/cwd") == str(platform.root), f"{what}: cwd is the copy"
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert f"{platform.root}/.venv/lib/" in maps and "/uvloop/loop." in maps, (
            f"{what}: runs on uvloop from the copy's venv"
        )
        own = {f"{replica.service.upper()}_{part}" for part in OWN_CREDENTIALS}
        settings = settings_in(pid)
        assert own <= settings, f"{what}: its own credentials: {sorted(own - settings)} missing"
        extra = settings - MAKE_RUN_SETS - SUITE_ADDS - own
        assert not extra, f"{what}: settings beyond what make run sets: {sorted(extra)}"
    health = await platform.stack.health()
    statuses = {s["service"]: s["status"] for s in (health or {}).get("services", [])}
    assert statuses == dict.fromkeys(SERVICES, "up"), (
        f"boot: /api/v1/health shows the five services up: {health}; {platform.logs()}"
    )
