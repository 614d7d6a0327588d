"""No hosted process outlives the sandbox service, even when the service is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

from tests.integration.sandbox.conftest import FIXTURES, WORK_ROOT

ROOT = Path(__file__).resolve().parents[3]


def processes_of(uid: int) -> list[int]:
    """PIDs whose real uid is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
        if int(line.split()[1]) == uid:
            found.append(int(entry))
    return found


async def test_killing_the_service_leaves_no_sandboxed_process_behind() -> None:
    name = f"orphan-{secrets.token_hex(3)}"
    work_root = WORK_ROOT / secrets.token_hex(4)
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        str(FIXTURES / "hold_server.py"),
        str(work_root),
        name,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert driver.stdout is not None
    async with asyncio.timeout(30):
        line = await driver.stdout.readline()
    uid, pid = (int(x) for x in line.split())
    assert os.geteuid() != 0 or processes_of(uid), "the sandboxed server should be running"
    driver.send_signal(signal.SIGKILL)
    await driver.wait()
    async with asyncio.timeout(10):
        while processes_of(uid) if os.geteuid() == 0 else _alive(pid):
            await asyncio.sleep(0.1)
    shutil.rmtree(work_root, ignore_errors=True)


def _alive(pid: int) -> bool:
    """True while `pid` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
