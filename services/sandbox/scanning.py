"""rpc.sandbox.scan: pull a catalog version's tarball from the registry, scan it confined.

The source comes in chunks (rpc.registry.source, at most 512 KiB each; its SHA-256 checked at the
end), is written into a fresh work directory with a copy of the scanner (libs/scan and the pure
modules of libs/common it imports) and the OSV advisory set, and the scanner runs there as a
one-shot sandbox: no network (no egress proxy), its own uid and work dir, the scan's CPU, memory
and time limits. The reply is the scanner's report: scanned, refused (the archive or a limit
refused it) or error (the run itself failed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import math
import os
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import structlog

from libs.common import osv, rpc_types
from libs.common.bus import Bus
from libs.common.rpc_types import ScanReply, ScanRequest, SourceRequest
from services.sandbox import cgroups, isolation, launchers, metrics
from services.sandbox.runtime import Runtime

log = structlog.get_logger()

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "services" / "sandbox" / "inside" / "scan.py"
# what the scanner imports besides the standard library and the service's site-packages
PROGRAM_MODULES = ("libs/__init__.py", "libs/common/__init__.py", "libs/common/osv.py",
                   "libs/common/poisoning.py", "libs/scan")  # fmt: skip
PROG_DIR = ".prog"
MARK = b"@@SWITCHBOARD_RESULT@@"
OUTPUT_LIMIT = 4 * 1024 * 1024
SOURCE_CALL_TIMEOUT_S = 30.0
MAX_REPLY_BYTES = 900_000  # a NATS message holds 1 MB
MAX_DESCRIPTION = 2000


class Refused(Exception):
    """The source is refused before it is scanned (too large)."""


_advisories: dict[tuple[str, float], list[Any]] = {}


def advisory_records(path: str) -> list[Any]:
    """The OSV records at `path` (cached while the files' newest mtime stays); [] without one."""
    if not path:
        return []
    root = Path(path)
    if root.is_dir():
        stamp = max((p.stat().st_mtime for p in root.rglob("*.json")), default=0.0)
    else:
        stamp = root.stat().st_mtime if root.exists() else -1.0
    key = (path, stamp)
    if key not in _advisories:
        _advisories.clear()
        _advisories[key] = list(osv.load(root).records())
    return _advisories[key]


def advisories(path: str) -> osv.Advisories:
    """The OSV advisory set of the settings, indexed."""
    return osv.from_records(advisory_records(path))


async def pull_source(bus: Bus, version_id: str, dest: Path, max_bytes: int) -> int:
    """Write the version's tarball to `dest` chunk by chunk; its size. Refused when too large."""
    offset, size, expected = 0, -1, ""
    digest = hashlib.sha256()
    with open(dest, "wb") as fh:
        while size < 0 or offset < size:
            chunk = await bus.call(
                rpc_types.REGISTRY_SOURCE,
                SourceRequest(version_id=version_id, offset=offset),
                timeout=SOURCE_CALL_TIMEOUT_S,
            )
            if size < 0:
                size, expected = chunk.size, chunk.sha256
                if size > max_bytes:
                    raise Refused(f"the source is {size} bytes, over the limit of {max_bytes}")
            data = base64.b64decode(chunk.data)
            if chunk.offset != offset or (not data and offset < size):
                raise RuntimeError(f"the registry sent a chunk at {chunk.offset}, not {offset}")
            fh.write(data)
            digest.update(data)
            offset += len(data)
    if offset != size or digest.hexdigest() != expected:
        raise RuntimeError("the source's SHA-256 does not match what the registry announced")
    return size


def stage_program(workdir: Path, records: list[Any]) -> Path:
    """Copy the scanner and its modules into the work dir (root-owned, read-only to the run)."""
    prog = workdir / PROG_DIR
    prog.mkdir(mode=0o755)
    shutil.copyfile(PROGRAM, prog / "scan.py")
    for rel in PROGRAM_MODULES:
        source = REPO / rel
        if source.is_dir():
            shutil.copytree(source, prog / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (prog / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, prog / rel)
    (prog / "advisories.json").write_bytes(orjson.dumps(records))
    for path in [prog, *prog.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return prog


def scan_limits(rt: Runtime) -> isolation.Limits:
    """The rlimits of a scan: its own memory and CPU time, files as large as it may unpack."""
    s = rt.settings
    return isolation.Limits(
        memory_mb=s.scan_memory_mb,
        cpu_s=math.ceil(s.scan_timeout_s) + 1,
        nofile=s.nofile,
        nproc=s.nproc,
        fsize_mb=max(s.fsize_mb, math.ceil(s.scan_max_unpacked_bytes / (1024 * 1024)) + 1),
    )


async def scan(rt: Runtime, bus: Bus, request: ScanRequest) -> ScanReply:
    """Pull and scan one version's source; the reply carries the report."""
    await rt.require_isolation()
    settings = rt.settings
    timeout = min(request.timeout_s or settings.scan_timeout_s, settings.scan_timeout_s)
    key = f"scan-{uuid.uuid4().hex}"
    workdir = rt.layout.work_root / "scans" / key
    uid = isolation.host_uid(settings, key)
    isolation.prepare_dir(workdir, uid)
    started = time.perf_counter()
    cgroup = None
    cmd = None
    try:
        try:
            await pull_source(
                bus, request.version_id, workdir / "source.tar.gz", settings.scan_max_source_bytes
            )
        except Refused as exc:
            return ScanReply(outcome="refused", reason=str(exc), isolation=rt.tier)
        records = advisory_records(settings.osv_advisories_path)
        prog = stage_program(workdir, records)
        limits = scan_limits(rt)
        cgroup = cgroups.create(rt.cgroups, key, limits.memory_mb, limits.nproc)
        conf = isolation.Confinement(key=key, workdir=workdir, limits=limits, cgroup=cgroup)
        inside = f"{launchers.WORK}/{PROG_DIR}" if rt.tier == isolation.BWRAP_USERNS else str(prog)
        argv = [settings.python, "-S", f"{inside}/scan.py"]
        job = {
            "archive": "source.tar.gz",
            "advisories": f"{PROG_DIR}/advisories.json",
            "limits": {
                "max_bytes": settings.scan_max_unpacked_bytes,
                "max_files": settings.scan_max_files,
                "max_seconds": timeout,
            },
        }
        cmd = launchers.build_command(settings, rt.layout, rt.tier, conf, argv)
        reply = await _run(cmd, orjson.dumps(job), timeout)
    finally:
        for fd in cmd.pass_fds if cmd is not None else ():
            os.close(fd)
        if cgroup is not None:
            await cgroups.remove(cgroup)
        shutil.rmtree(workdir, ignore_errors=True)
    duration = round((time.perf_counter() - started) * 1000)
    outcome = reply.get("outcome")
    if outcome == "scanned":
        report = fit({k: v for k, v in reply.items() if k not in ("outcome", "reason")})
        return ScanReply("scanned", None, report, duration, rt.tier)
    if outcome == "refused":
        return ScanReply("refused", reply.get("reason"), None, duration, rt.tier)
    reason = str(reply.get("reason") or "the scan failed")
    return ScanReply("error", reason, None, duration, rt.tier)


def fit(report: dict[str, Any]) -> dict[str, Any]:
    """The report under the NATS payload limit.

    Past it, tools lose their full definitions, then long descriptions are cut (their
    description_sha256 stays that of the whole text), then the list is cut."""
    if len(orjson.dumps(report)) <= MAX_REPLY_BYTES:
        return report
    tools = [{k: v for k, v in t.items() if k != "definition"} for t in report.get("tools") or []]
    report = {**report, "tools": tools, "tools_truncated": True}
    if len(orjson.dumps(report)) > MAX_REPLY_BYTES:
        for tool in tools:
            tool["description"] = str(tool.get("description") or "")[:MAX_DESCRIPTION]
    while tools and len(orjson.dumps(report)) > MAX_REPLY_BYTES:
        del tools[len(tools) // 2 :]
    return report


async def _run(cmd: isolation.Command, job: bytes, timeout: float) -> dict[str, Any]:
    """Run the scanner; its marked JSON line, or an outcome saying how it ended without one."""
    proc = await isolation.spawn(
        cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout + 5):
            out, err = await isolation.communicate(proc, job, OUTPUT_LIMIT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await isolation.communicate(proc, b"", OUTPUT_LIMIT)
        metrics.limit_kill("timeout")
        return {"outcome": "refused", "reason": f"the scan took longer than {timeout:g} s"}
    _, mark, tail = out.rpartition(MARK)
    if mark:
        with contextlib.suppress(orjson.JSONDecodeError, IndexError):
            return orjson.loads(tail.strip().splitlines()[0])
    code = proc.returncode
    said = " | ".join(err.decode(errors="replace").strip().splitlines()[-3:])[-500:]
    if code is not None and (code < 0 or code > 128):
        sig = -code if code < 0 else code - 128
        if sig in (signal.SIGKILL, signal.SIGXCPU, signal.SIGXFSZ):
            metrics.limit_kill(
                {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file_size"}.get(sig, "memory")
            )
            return {"outcome": "refused", "reason": f"the scan hit a limit (signal {sig})"}
    log.warning("scan_no_result", exit_code=code, stderr=said)
    return {"outcome": "error", "reason": f"the scanner exited with code {code}: {said}"}
