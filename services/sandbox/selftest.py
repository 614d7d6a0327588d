"""The start-up self-test: real sandboxed processes on the paths hosted servers and code runs take.

Whatever keeps a sandbox from starting (a path its uid cannot reach, a missing interpreter,
bwrap refusing a mount) shows here, at start-up, with the exact cause: logged as
`sandbox_self_test_failed` and reported by `GET /api/v1/sandbox/status` under `self_test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.sandbox import isolation, launchers
from services.sandbox.layout import Layout
from services.sandbox.settings import SandboxSettings

MARK = "switchboard-sandbox-ok"
# what a hosted Python server needs: the interpreter, the service's packages, a work dir
SERVER_PROBE = f"import mcp, os; os.listdir('.'); print({MARK!r})"
CODE_PROBE = f"async def main():\n    return {MARK!r}\n"
DETAIL_CHARS = 600
OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, and what went wrong."""

    name: str
    ok: bool
    detail: str | None = None


@dataclass(frozen=True)
class SelfTest:
    """The outcome of the self-test."""

    ok: bool
    checks: tuple[Check, ...]
    duration_ms: float
    checked_at: str
    relocated: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @property
    def cause(self) -> str:
        """What failed, one line per failed check."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)


async def run(settings: SandboxSettings, layout: Layout, tier: str) -> SelfTest:
    """Check the layout, then start one hosted-server-like and one code-run process."""
    started = time.perf_counter()
    checks = [Check("layout", not layout.problems, "; ".join(layout.problems) or None)]
    if tier == isolation.LANDLOCK_FALLBACK and any(s != d for s, d in layout.ro_paths):
        staged = [d for s, d in layout.ro_paths if s != d]
        checks.append(
            Check("ro_paths", False, f"the fallback tier cannot remap unreachable paths: {staged}")
        )
    checks += await asyncio.gather(
        _probe_server(settings, layout, tier), _probe_code(settings, layout, tier)
    )
    return SelfTest(
        ok=all(c.ok for c in checks),
        checks=tuple(checks),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        checked_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        relocated=layout.notes,
    )


async def _probe_server(settings: SandboxSettings, layout: Layout, tier: str) -> Check:
    """The interpreter with the service's packages, as a hosted Python server gets them."""
    argv = [settings.python, "-c", SERVER_PROBE]
    code, out, err = await _run("selftest-server", settings, layout, tier, argv, b"", True)
    if code == 0 and MARK in out:
        return Check("hosted_server", True)
    return Check("hosted_server", False, _why(code, err))


async def _probe_code(settings: SandboxSettings, layout: Layout, tier: str) -> Check:
    """The code runner from the support dir, as a code tool runs."""
    runner = f"{launchers.SUPPORT_DIR}/runner.py"
    if tier != isolation.BWRAP_USERNS:
        runner = str(layout.support / "runner.py")
    job = orjson.dumps({"code": CODE_PROBE, "args": {}})
    argv = [settings.python, "-S", runner]
    code, out, err = await _run("selftest-code", settings, layout, tier, argv, job, False)
    if code == 0 and f'"result": "{MARK}"' in out:
        return Check("code_run", True)
    return Check("code_run", False, _why(code, err or out))


async def _run(
    label: str,
    settings: SandboxSettings,
    layout: Layout,
    tier: str,
    argv: list[str],
    stdin: bytes,
    service_packages: bool,
) -> tuple[int | None, str, str]:
    """Run argv confined in a fresh work dir; (exit code, stdout, stderr)."""
    key = f"{label}-{uuid.uuid4().hex[:12]}"
    workdir = layout.work_root / "runs" / key
    uid = isolation.host_uid(settings, key)
    isolation.prepare_dir(workdir, uid)
    limits = isolation.Limits(settings.memory_mb, 30, settings.nofile, settings.nproc, 1)
    conf = isolation.Confinement(
        key=key, workdir=workdir, limits=limits, service_packages=service_packages
    )
    try:
        cmd = launchers.build_command(settings, layout, tier, conf, argv)
    except OSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        return None, "", f"the command could not be built: {exc}"
    try:
        proc = await isolation.spawn(
            cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(settings.start_timeout_s):
                out, err = await isolation.communicate(proc, stdin, OUTPUT_LIMIT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            await proc.wait()
            return None, "", f"no answer within {settings.start_timeout_s:g} s"
    except OSError as exc:
        return None, "", f"could not start {cmd.argv[0]}: {exc}"
    finally:
        for fd in cmd.pass_fds:
            os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _why(code: int | None, err: str) -> str:
    """The exit status and the end of what the process said."""
    text = " | ".join(line.strip() for line in err.strip().splitlines()[-4:] if line.strip())
    status = "did not finish" if code is None else f"exited with code {code}"
    return f"{status}: {text[-DETAIL_CHARS:] or '(no output)'}"
