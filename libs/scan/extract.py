"""Unpack an untrusted tar.gz with guards: nothing outside the tree, nothing but files and dirs.

Refused (the whole archive, with the reason): absolute member names, `..` components
(zip-slip), symbolic or hard links whose target leaves the tree or is absolute, device files,
FIFOs, more members or more unpacked bytes than the limits, and a run past its deadline. Links
that stay inside the tree are not materialised (a scan reads the files they point at anyway).
"""

from __future__ import annotations

import posixpath
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class UnsafeArchive(Exception):
    """The archive was refused; `str(exc)` says which member and why."""


@dataclass(frozen=True)
class Limits:
    """How much an archive may unpack to, and for how long."""

    max_bytes: int = 64 * 1024 * 1024
    max_files: int = 5000
    max_seconds: float = 60.0


@dataclass
class Extracted:
    """What was unpacked: regular files (relative paths, sorted) and bytes written."""

    files: list[str] = field(default_factory=list)
    total_bytes: int = 0
    links_skipped: int = 0


def safe_name(name: str) -> str:
    """The member's normalised relative path; UnsafeArchive for absolute or escaping names.

    Shared with the registry, which checks an upload the same way before storing it."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"absolute path in archive: {name!r}")
    if "\x00" in name:
        raise UnsafeArchive(f"a NUL character in an archive path: {name!r}")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeArchive(f"path traversal in archive: {name!r}")
    norm = posixpath.normpath("/".join(p for p in parts if p not in ("", ".")))
    if norm in ("", "."):
        return ""
    return norm


def check_link(member: tarfile.TarInfo, name: str) -> None:
    """A link must point inside the tree: relative, and not above the root once resolved."""
    target = member.linkname
    if target.startswith("/") or "\\" in target:
        raise UnsafeArchive(f"link {name!r} points outside the tree: {target!r}")
    base = posixpath.dirname(name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchive(f"link {name!r} points outside the tree: {target!r}")


def extract(archive: Path, dest: Path, limits: Limits) -> Extracted:
    """Unpack `archive` into `dest` (created), or raise UnsafeArchive naming the first refusal."""
    deadline = time.monotonic() + limits.max_seconds
    out = Extracted()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UnsafeArchive(f"not a readable tar archive: {exc}") from None
    with tar:
        count = 0
        while True:
            if time.monotonic() > deadline:
                raise UnsafeArchive(f"unpacking took longer than {limits.max_seconds:g} s")
            try:
                member = tar.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise UnsafeArchive(f"corrupt archive: {exc}") from None
            if member is None:
                break
            count += 1
            if count > limits.max_files:
                raise UnsafeArchive(f"more than {limits.max_files} entries in the archive")
            name = safe_name(member.name)
            if member.isdir():
                if name:
                    (dest / name).mkdir(parents=True, exist_ok=True)
                continue
            if member.issym() or member.islnk():
                check_link(member, name)
                out.links_skipped += 1
                continue
            if not member.isreg():
                raise UnsafeArchive(f"special file in archive (device or FIFO): {member.name!r}")
            if not name:
                raise UnsafeArchive(f"a file with no name in the archive: {member.name!r}")
            out.total_bytes += member.size
            if out.total_bytes > limits.max_bytes:
                raise UnsafeArchive(f"the archive unpacks to more than {limits.max_bytes} bytes")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.is_dir():
                raise UnsafeArchive(f"a file overwrites a directory or link: {member.name!r}")
            source = tar.extractfile(member)
            if source is None:
                raise UnsafeArchive(f"unreadable member: {member.name!r}")
            with source, open(target, "wb") as sink:
                while chunk := source.read(1 << 16):
                    sink.write(chunk)
            out.files.append(name)
    out.files = sorted(set(out.files))
    return out
