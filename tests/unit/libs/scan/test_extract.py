"""Guarded extraction: what unpacks, and each refusal with its reason."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from libs.scan import extract
from tests.support import tarballs

LIMITS = extract.Limits(max_bytes=1_000_000, max_files=50, max_seconds=30)


def unpack(tmp_path: Path, data: bytes, limits: extract.Limits = LIMITS) -> extract.Extracted:
    archive = tmp_path / "source.tar.gz"
    archive.write_bytes(data)
    return extract.extract(archive, tmp_path / "tree", limits)


def test_files_unpack_in_sorted_order_under_the_tree(tmp_path: Path) -> None:
    out = unpack(tmp_path, tarballs.clean())
    assert out.files == sorted(out.files)
    assert "pkg/server.py" in out.files
    assert (tmp_path / "tree" / "pkg" / "server.py").read_text().startswith('"""A small')


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (tarballs.zip_slip(), "path traversal"),
        (tarballs.build({"/etc/cron.d/x": "x"}, prefix=""), "absolute path"),
        (tarballs.symlink_escape(), "points outside the tree"),
        (tarballs.build({}, [tarballs.member("pkg/abs", tarfile.SYMTYPE, "/etc/passwd")]),
         "points outside the tree"),
        (tarballs.build({}, [tarballs.member("pkg/h", tarfile.LNKTYPE, "../outside")]),
         "points outside the tree"),
        (tarballs.build({}, [tarballs.member("pkg/null", tarfile.CHRTYPE)]), "special file"),
        (tarballs.build({}, [tarballs.member("pkg/fifo", tarfile.FIFOTYPE)]), "special file"),
        (b"this is not a tarball", "not a readable tar archive"),
    ],
    # named, not by their bytes: a gzip header's time differs between xdist workers' collections
    ids=["zip-slip", "absolute", "symlink-escape", "symlink-absolute", "hardlink-escape",
         "char-device", "fifo", "not-tar"],
)  # fmt: skip
def test_unsafe_archives_are_refused_with_the_reason(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    with pytest.raises(extract.UnsafeArchive, match=reason):
        unpack(tmp_path, data)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil.py").exists()


def test_links_inside_the_tree_are_accepted_but_not_materialised(tmp_path: Path) -> None:
    data = tarballs.build({"a.txt": "a"}, [tarballs.member("pkg/b.txt", tarfile.SYMTYPE, "a.txt")])
    out = unpack(tmp_path, data)
    assert out.files == ["pkg/a.txt"] and out.links_skipped == 1
    assert not (tmp_path / "tree" / "pkg" / "b.txt").exists()


def test_size_and_count_limits(tmp_path: Path) -> None:
    big = tarballs.build({"big.bin": b"\0" * 5000})
    with pytest.raises(extract.UnsafeArchive, match="more than 4000 bytes"):
        unpack(tmp_path, big, extract.Limits(max_bytes=4000, max_files=50, max_seconds=30))
    many = tarballs.build({f"f{i}.txt": "x" for i in range(10)})
    with pytest.raises(extract.UnsafeArchive, match="more than 5 entries"):
        unpack(tmp_path, many, extract.Limits(max_bytes=10**6, max_files=5, max_seconds=30))
