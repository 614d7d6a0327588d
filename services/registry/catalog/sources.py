"""Version sources made safe: a tarball checked and normalised, a git repository archived.

Tarballs and repositories are untrusted: names that are absolute or climb out (`..`), links that
point outside, device files and sizes or file counts over the limits are refused (422) before
anything is stored; the scanner checks again inside the sandbox. What is stored is a normalised
tar.gz (sorted members, owner 0, mtime 0, modes 0644/0755), so the same tree has the same SHA-256.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

import orjson

from libs.common.errors import PayloadTooLarge, Unprocessable, UpstreamTimeout
from libs.scan.extract import UnsafeArchive, check_link, safe_name
from services.registry.settings import RegistrySettings

GIT_PATH = "/usr/local/bin:/usr/bin:/bin"
STDERR_CHARS = 300


@dataclass(frozen=True)
class Source:
    """A normalised source tarball and what is known of it."""

    tarball: bytes
    sha256: str
    size: int
    file_count: int
    commit_sha: str | None = None
    commit_date: date | None = None


def refused(message: str, field: str = "file") -> Unprocessable:
    """422 naming the field whose content is unsafe."""
    return Unprocessable(message, details={"fields": {field: message}})


def _safe_name(name: str) -> str:
    """The member name, normalised; 422 when absolute or climbing out (libs/scan's rule)."""
    try:
        return safe_name(name[:4096])
    except UnsafeArchive as exc:
        raise refused(f"The archive is refused: {str(exc)[:300]}.") from None


def _check_link(member: tarfile.TarInfo, name: str) -> None:
    """Symbolic and hard links must point inside the archive (libs/scan's rule)."""
    try:
        check_link(member, name)
    except UnsafeArchive as exc:
        raise refused(f"The archive is refused: {str(exc)[:300]}.") from None


def normalise_tarball(data: bytes, settings: RegistrySettings) -> Source:
    """Check an uploaded (or archived) tar or tar.gz and repack it normalised."""
    if not data:
        raise refused("The body is empty; a tar or tar.gz archive is expected.")
    if len(data) > settings.catalog_max_tarball_bytes:
        raise PayloadTooLarge(
            f"The source is larger than {settings.catalog_max_tarball_bytes} bytes.",
            details={"limit": settings.catalog_max_tarball_bytes},
        )
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise refused("The body is not a tar or tar.gz archive.") from None
    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    unpacked = 0
    with archive:
        try:
            for member in archive:
                if len(members) >= settings.catalog_max_files:
                    raise refused(
                        f"The archive holds more than {settings.catalog_max_files} files."
                    )
                name = _safe_name(member.name)
                if member.isdev() or not (
                    member.isfile() or member.isdir() or member.issym() or member.islnk()
                ):
                    raise refused(f"The archive holds a device or special file ({name[:200]!r}).")
                if member.issym() or member.islnk():
                    _check_link(member, name)
                if not name:
                    continue
                body = None
                if member.isfile():
                    unpacked += member.size
                    if unpacked > settings.catalog_max_unpacked_bytes:
                        raise refused(
                            "The archive unpacks to more than "
                            f"{settings.catalog_max_unpacked_bytes} bytes."
                        )
                    handle = archive.extractfile(member)
                    body = handle.read() if handle else b""
                members[name] = (member, body)
        except (tarfile.TarError, OSError, EOFError):
            raise refused("The archive is damaged or truncated.") from None
    if not any(body is not None for _, body in members.values()):
        raise refused("The archive holds no files.")
    return _repack(members)


def _repack(members: dict[str, tuple[tarfile.TarInfo, bytes | None]]) -> Source:
    """Write the members sorted, with fixed owner, mtime and modes, as tar.gz."""
    out = io.BytesIO()
    files = 0
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            member, body = members[name]
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if member.isdir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif member.issym() or member.islnk():
                info.type, info.linkname, info.mode = member.type, member.linkname, 0o777
                if member.islnk():
                    info.linkname = posixpath.normpath(member.linkname)
            else:
                info.mode = 0o755 if member.mode & 0o111 else 0o644
                info.size = len(body or b"")
                files += 1
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    packed = gzip.compress(out.getvalue(), mtime=0)
    return Source(packed, hashlib.sha256(packed).hexdigest(), len(packed), files)


def server_json_tarball(doc: dict, settings: RegistrySettings) -> Source:
    """A source holding only `server.json`."""
    body = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    info = tarfile.TarInfo("server.json")
    return _repack({"server.json": (_file_like(info), body)})


def _file_like(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.type, info.mode = tarfile.REGTYPE, 0o644
    return info


def check_git_url(url: str, hosts: list[str], allow_local: bool) -> None:
    """422 unless an https URL on an allowed host (or file:// when local git is allowed)."""
    parts = urlsplit(url)
    if parts.scheme == "file" and allow_local:
        return
    if parts.scheme != "https":
        raise refused("The repository URL must use https.", "url")
    if parts.username or parts.password:
        raise refused("The repository URL must not carry credentials.", "url")
    host = (parts.hostname or "").lower()
    if host not in hosts or parts.port not in (None, 443):
        raise refused(f"Git host {host!r} is not allowed (catalog_git_hosts).", "url")


async def fetch_git(url: str, ref: str | None, settings: RegistrySettings) -> Source:
    """Fetch `ref` (default HEAD) at depth 1 and archive it; no prompts, hooks or submodules."""
    if ref is not None and (ref.startswith("-") or not ref.strip() or len(ref) > 255):
        raise refused("The git ref is not valid.", "ref")
    with tempfile.TemporaryDirectory(prefix="catalog-git-") as tmp:
        env = {
            "PATH": GIT_PATH,
            "HOME": tmp,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_ASKPASS": "/bin/false",
            "GIT_SSH_COMMAND": "/bin/false",
            "GIT_ALLOW_PROTOCOL": "https:file" if settings.catalog_allow_local_git else "https",
        }
        base = ["git", "-c", "core.hooksPath=/dev/null", "-c", "submodule.recurse=false"]
        try:
            async with asyncio.timeout(settings.catalog_git_timeout_s):
                await _run([*base, "init", "-q", tmp + "/r"], env)
                repo = ["-C", tmp + "/r"]
                await _run(
                    [*base, *repo, "fetch", "-q", "--depth", "1", "--no-tags",
                     "--no-recurse-submodules", "--", url, ref or "HEAD"],
                    env,
                )  # fmt: skip
                meta = await _run([*base, *repo, "log", "-1", "--format=%H %ct", "FETCH_HEAD"], env)
                tar = await _run([*base, *repo, "archive", "--format=tar", "FETCH_HEAD"], env)
        except TimeoutError:
            raise UpstreamTimeout("The repository could not be fetched in time.") from None
    sha, _, stamp = meta.decode().strip().partition(" ")
    source = normalise_tarball(tar, settings)
    when = datetime.fromtimestamp(int(stamp), UTC).date()
    return Source(source.tarball, source.sha256, source.size, source.file_count, sha, when)


async def _run(args: list[str], env: dict[str, str]) -> bytes:
    """Run git; a failure is 422 with the start of its error output."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()[:STDERR_CHARS]
        if "couldn't find remote ref" in message:
            # the repository answered; the branch, tag or commit asked for is not in it
            raise Unprocessable(
                "The git ref was not found in the repository.",
                details={"fields": {"ref": "not found in the repository"}, "git": message},
            )
        raise Unprocessable(
            "The repository could not be fetched.",
            details={"fields": {"url": "git failed"}, "git": message},
        )
    return out
