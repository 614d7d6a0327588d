"""The workspace file area: every path confined to its root; archives extracted safely."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from libs.common.errors import Conflict, NotFound, PayloadTooLarge, ValidationError

MAX_ENTRIES = 1000
MAX_NAME_BYTES = 255  # what Linux file systems take (NAME_MAX); longer is ENAMETOOLONG
MAX_PATH_BYTES = 1024


class Workspace:
    """Files under one root directory."""

    def __init__(self, root: Path, max_file_bytes: int, max_extract_bytes: int) -> None:
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes
        self.max_extract_bytes = max_extract_bytes

    def ensure(self) -> None:
        """Create the root."""
        self.root.mkdir(parents=True, exist_ok=True)

    def resolve(self, raw: str | None, *, allow_root: bool = False) -> Path:
        """A request path as a host path inside the root; traversal, absolute or escaping → 400."""
        raw = (raw or "").strip()
        if "\x00" in raw or "\\" in raw:
            raise ValidationError("The path has forbidden characters.", details={"path": raw})
        if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
            raise ValidationError("Absolute paths are not allowed.", details={"path": raw})
        parts = PurePosixPath(raw).parts if raw not in ("", ".") else ()
        if any(p == ".." for p in parts):
            raise ValidationError("Parent references (..) are not allowed.", details={"path": raw})
        if not parts and not allow_root:
            raise ValidationError("A path inside the workspace is required.", details={"path": raw})
        if len(raw.encode()) > MAX_PATH_BYTES or any(
            len(p.encode()) > MAX_NAME_BYTES for p in parts
        ):
            raise ValidationError(
                f"A name may have {MAX_NAME_BYTES} bytes, a path {MAX_PATH_BYTES}.",
                details={"path": raw[:200]},
            )
        target = self.root.joinpath(*parts)
        real = Path(os.path.realpath(target))
        if real != self.root and self.root not in real.parents:
            raise ValidationError("The path leads outside the workspace.", details={"path": raw})
        return target

    def rel(self, path: Path) -> str:
        """A host path as the API shows it."""
        return path.relative_to(self.root).as_posix() if path != self.root else ""

    def entry(self, path: Path) -> dict[str, Any]:
        """One directory entry."""
        info = path.lstat()
        kind = (
            "dir"
            if stat.S_ISDIR(info.st_mode)
            else "symlink"
            if stat.S_ISLNK(info.st_mode)
            else "file"
        )
        return {
            "name": path.name,
            "path": self.rel(path),
            "type": kind,
            "size": info.st_size,
            "modified": datetime.fromtimestamp(info.st_mtime, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }

    def list(self, raw: str | None) -> list[dict[str, Any]]:
        """Entries of a directory, directories first."""
        path = self.resolve(raw, allow_root=True)
        if not path.is_dir():
            raise NotFound("No such directory.", details={"path": raw})
        entries = [self.entry(p) for p in path.iterdir()]
        return sorted(entries, key=lambda e: (e["type"] != "dir", e["name"]))[:MAX_ENTRIES]

    def read(self, raw: str | None) -> bytes:
        """A file's bytes (symlinks are not followed)."""
        path = self.resolve(raw)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFound("No such file.", details={"path": raw}) from None
        except OSError:
            raise ValidationError("Not a readable regular file.", details={"path": raw}) from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ValidationError("Not a regular file.", details={"path": raw})
            data = fh.read(self.max_file_bytes + 1)
        if len(data) > self.max_file_bytes:
            raise PayloadTooLarge(
                "The file is over the size limit.", details={"limit": self.max_file_bytes}
            )
        return data

    def write(self, raw: str | None, data: bytes) -> dict[str, Any]:
        """Create or replace a file (its directory must exist; symlinks are not followed)."""
        if len(data) > self.max_file_bytes:
            raise PayloadTooLarge(
                "The file is over the size limit.", details={"limit": self.max_file_bytes}
            )
        path = self.resolve(raw)
        if not path.parent.is_dir():
            raise NotFound("The parent directory does not exist.", details={"path": raw})
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        except IsADirectoryError:
            raise Conflict("A directory has this name.", details={"path": raw}) from None
        except OSError:
            raise ValidationError("The file cannot be written.", details={"path": raw}) from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return self.entry(path)

    def mkdir(self, raw: str | None) -> dict[str, Any]:
        """Create a directory (and missing parents)."""
        path = self.resolve(raw)
        if path.exists() and not path.is_dir():
            raise Conflict("A file has this name.", details={"path": raw})
        path.mkdir(parents=True, exist_ok=True)
        self.resolve(raw)  # the created chain must still be inside
        return self.entry(path)

    def delete(self, raw: str | None) -> None:
        """Delete a file, a symlink (not its target) or a directory tree."""
        path = self.resolve(raw)
        if not path.exists() and not path.is_symlink():
            raise NotFound("No such file or directory.", details={"path": raw})
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    def extract(self, raw_dir: str | None, name: str, data: bytes) -> list[str]:
        """Unpack a .zip / .tar / .tar.gz into a directory; every member checked first."""
        dest = self.resolve(raw_dir, allow_root=True)
        if not dest.is_dir():
            raise NotFound("No such directory.", details={"path": raw_dir})
        members = self._members(name, data)
        total = sum(size for _, size, _ in members)
        if total > self.max_extract_bytes or len(members) > MAX_ENTRIES:
            raise PayloadTooLarge(
                "The archive expands beyond the limit.",
                details={"limit": self.max_extract_bytes, "entries": len(members)},
            )
        base = self.rel(dest)
        targets = [
            (self.resolve(f"{base}/{m}" if base else m), size, read) for m, size, read in members
        ]
        written = []
        for target, _, read in targets:
            if read is None:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            self.write(self.rel(target), read())
            written.append(self.rel(target))
        return written

    def _members(self, name: str, data: bytes) -> list[tuple[str, int, Any]]:
        """(member path, size, reader or None for a directory), refusing links and devices."""
        lower = name.lower()
        if lower.endswith(".zip"):
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile:
                raise ValidationError("The upload is not a valid zip file.") from None
            out = []
            for info in archive.infolist():
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise ValidationError(
                        "Archives with symlinks are refused.", details={"member": info.filename}
                    )
                self._check_member(info.filename)
                reader = None if info.is_dir() else (lambda i=info: archive.read(i))
                out.append((info.filename.rstrip("/"), info.file_size, reader))
            return out
        if lower.endswith((".tar", ".tar.gz", ".tgz")):
            try:
                archive = tarfile.open(fileobj=io.BytesIO(data))
            except tarfile.TarError:
                raise ValidationError("The upload is not a valid tar file.") from None
            out = []
            for member in archive.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise ValidationError(
                        "Archives with links or special files are refused.",
                        details={"member": member.name},
                    )
                self._check_member(member.name)
                reader = (
                    None if member.isdir() else (lambda m=member: archive.extractfile(m).read())
                )
                out.append((member.name.rstrip("/"), member.size, reader))
            return out
        raise ValidationError(
            "Only .zip, .tar, .tar.gz and .tgz archives are extracted.", details={"name": name}
        )

    @staticmethod
    def _check_member(member: str) -> None:
        """Zip-slip: no absolute member names and no parent references."""
        if (
            member.startswith("/")
            or "\\" in member
            or ".." in PurePosixPath(member).parts
            or "\x00" in member
        ):
            raise ValidationError(
                "An archive member leads outside its directory.", details={"member": member}
            )
