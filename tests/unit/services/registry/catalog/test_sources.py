"""Untrusted sources: every tarball guard, the normalised repack and the git host allowlist."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from libs.common.errors import PayloadTooLarge, Unprocessable
from services.registry.catalog import sources
from services.registry.settings import RegistrySettings

SETTINGS = RegistrySettings.from_env(
    {
        "REGISTRY_CATALOG_MAX_TARBALL_BYTES": "200000",
        "REGISTRY_CATALOG_MAX_UNPACKED_BYTES": "1000",
        "REGISTRY_CATALOG_MAX_FILES": "4",
    }
)
HOSTS = ["github.com", "gitlab.com"]


def member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    """A tar header of `kind` named `name` with the given attributes."""
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def archive(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz", fmt: int = 1
) -> bytes:
    """A tar (or tar.gz) of the entries, written in the order given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode, format=fmt) as tar:
        for info, body in entries:
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


def files(tree: dict[str, bytes], **attrs: object) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """Regular file entries for a {name: body} tree."""
    return [(member(name, **attrs), body) for name, body in tree.items()]


def refused_field(data: bytes) -> str:
    """The field a refused archive's 422 names."""
    with pytest.raises(Unprocessable) as caught:
        sources.normalise_tarball(data, SETTINGS)
    assert caught.value.status == 422
    return next(iter(caught.value.details["fields"]))


def names(packed: bytes) -> list[str]:
    """The member names of a packed source, in order."""
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        return tar.getnames()


@pytest.mark.parametrize(
    "name",
    ["../evil.py", "a/../../evil.py", "..", "./../x", "a\\..\\..\\evil.py"],
    ids=["parent", "nested-parent", "dotdot", "dot-parent", "backslash"],
)
def test_a_name_climbing_out_of_the_root_is_refused(name: str) -> None:
    assert refused_field(archive(files({name: b"x"}))) == "file"


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/windows/x.py", "c:evil"])
def test_an_absolute_name_is_refused(name: str) -> None:
    assert refused_field(archive(files({name: b"x"}))) == "file"


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (tarfile.SYMTYPE, "../../etc/passwd"),
        (tarfile.SYMTYPE, "/etc/passwd"),
        (tarfile.SYMTYPE, "../.."),
        (tarfile.LNKTYPE, "../outside"),
        (tarfile.LNKTYPE, "/etc/shadow"),
    ],
    ids=["symlink-up", "symlink-absolute", "symlink-dir-up", "hardlink-up", "hardlink-absolute"],
)
def test_a_link_pointing_outside_the_archive_is_refused(kind: bytes, target: str) -> None:
    entries = [*files({"ok.py": b"x"}), (member("lib/out", kind, linkname=target), None)]
    assert refused_field(archive(entries)) == "file"


def test_links_inside_the_archive_are_kept() -> None:
    entries = [
        *files({"README.md": b"# hi", "lib/a.py": b"a"}),
        (member("lib/readme", tarfile.SYMTYPE, linkname="../README.md"), None),
        (member("copy.py", tarfile.LNKTYPE, linkname="lib/a.py"), None),
    ]
    source = sources.normalise_tarball(archive(entries), SETTINGS)
    with tarfile.open(fileobj=io.BytesIO(source.tarball), mode="r:gz") as tar:
        links = {m.name: (m.type, m.linkname) for m in tar if m.issym() or m.islnk()}
    assert links == {
        "lib/readme": (tarfile.SYMTYPE, "../README.md"),
        "copy.py": (tarfile.LNKTYPE, "lib/a.py"),
    }
    assert source.file_count == 2


@pytest.mark.parametrize(
    "kind",
    [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE],
    ids=["character-device", "block-device", "fifo"],
)
def test_device_and_special_files_are_refused(kind: bytes) -> None:
    entries = [*files({"ok.py": b"x"}), (member("dev/thing", kind, devmajor=1, devminor=3), None)]
    assert refused_field(archive(entries)) == "file"


def test_the_file_count_limit_allows_the_limit_and_refuses_one_more() -> None:
    four = {f"f{i}.py": b"x" for i in range(4)}
    assert sources.normalise_tarball(archive(files(four)), SETTINGS).file_count == 4
    five = {f"f{i}.py": b"x" for i in range(5)}
    assert refused_field(archive(files(five))) == "file"


def test_the_unpacked_size_limit_counts_every_file() -> None:
    assert sources.normalise_tarball(archive(files({"a": b"x" * 1000})), SETTINGS).size > 0
    assert refused_field(archive(files({"a": b"x" * 600, "b": b"y" * 401}))) == "file"


def test_a_body_over_the_tarball_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        sources.normalise_tarball(b"\x1f\x8b" + b"\x00" * 200_000, SETTINGS)
    assert caught.value.status == 413
    assert caught.value.details == {"limit": 200_000}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text, not an archive",
        gzip.compress(b"plain text inside gzip, no tar header here" * 20),
        b"PK\x03\x04" + b"\x00" * 100,
        archive(files({"a.py": b"x" * 900}))[:60],
        archive(files({"a.py": b"x" * 900}), mode="w")[:700],
        archive([]),
        archive([(member("only-a-dir", tarfile.DIRTYPE), None)]),
    ],
    ids=[
        "empty",
        "text",
        "gzip-not-tar",
        "zip",
        "truncated-gzip",
        "truncated-tar",
        "no-members",
        "only-directories",
    ],  # fmt: skip
)
def test_bodies_that_are_not_a_usable_tar_or_tar_gz_are_refused(data: bytes) -> None:
    assert refused_field(data) == "file"


def test_the_repack_is_deterministic_whatever_the_order_owners_and_times() -> None:
    tree = {"src/b.py": b"b", "README.md": b"# r", "src/a.py": b"a"}
    one = archive(files(tree, mtime=1_700_000_000, uid=1000, gid=1000, uname="alice", mode=0o600))
    reordered = dict(reversed(list(tree.items())))
    two = archive(files(reordered, mtime=5, uid=0, gid=0, uname="root", mode=0o664), mode="w")
    first = sources.normalise_tarball(one, SETTINGS)
    again = sources.normalise_tarball(one, SETTINGS)
    other = sources.normalise_tarball(two, SETTINGS)
    assert first.tarball == again.tarball == other.tarball
    assert first.sha256 == hashlib.sha256(first.tarball).hexdigest() == other.sha256
    assert first.size == len(first.tarball) and first.file_count == 3
    assert names(first.tarball) == ["README.md", "src/a.py", "src/b.py"]


def test_the_repack_fixes_owner_time_and_modes_keeping_the_executable_bit() -> None:
    entries = [
        (member("run.sh", mode=0o700, uid=501, mtime=99), b"#!/bin/sh\n"),
        (member("./lib/x.py", mode=0o666, uname="bob"), b"x"),
    ]
    source = sources.normalise_tarball(archive(entries), SETTINGS)
    with tarfile.open(fileobj=io.BytesIO(source.tarball), mode="r:gz") as tar:
        seen = {m.name: (m.mode, m.uid, m.gid, m.uname, m.mtime) for m in tar}
    assert seen == {"lib/x.py": (0o644, 0, 0, "", 0), "run.sh": (0o755, 0, 0, "", 0)}


def test_dot_files_and_folders_keep_their_names() -> None:
    tree = {"./.env": b"K=v", ".github/workflows/ci.yml": b"on: push", "./src/.keep": b""}
    source = sources.normalise_tarball(archive(files(tree)), SETTINGS)
    assert names(source.tarball) == [".env", ".github/workflows/ci.yml", "src/.keep"]


def test_a_different_tree_has_a_different_digest() -> None:
    one = sources.normalise_tarball(archive(files({"a.py": b"1"})), SETTINGS)
    two = sources.normalise_tarball(archive(files({"a.py": b"2"})), SETTINGS)
    assert one.sha256 != two.sha256


def test_a_server_json_source_is_the_same_bytes_for_the_same_document() -> None:
    first = sources.server_json_tarball({"name": "x/y", "version": "1.0.0"}, SETTINGS)
    again = sources.server_json_tarball({"version": "1.0.0", "name": "x/y"}, SETTINGS)
    assert first.tarball == again.tarball and first.sha256 == again.sha256
    assert names(first.tarball) == ["server.json"] and first.file_count == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/tools.git",
        "https://GitHub.com/acme/tools",
        "https://gitlab.com:443/group/sub/repo.git",
    ],
)
def test_https_urls_on_an_allowed_host_are_accepted(url: str) -> None:
    sources.check_git_url(url, HOSTS, allow_local=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/acme/tools.git",
        "ssh://git@github.com/acme/tools.git",
        "git@github.com:acme/tools.git",
        "git://github.com/acme/tools.git",
        "https://token:x-oauth@github.com/acme/tools.git",
        "https://user@github.com/acme/tools.git",
        "https://evil.example.com/acme/tools.git",
        "https://github.com.evil.example.com/acme/tools.git",
        "https://github.com:8443/acme/tools.git",
        "https://127.0.0.1/acme/tools.git",
        "file:///srv/repos/tools",
    ],
    ids=[
        "http",
        "ssh",
        "scp-like",
        "git-protocol",
        "credentials",
        "user",
        "other-host",
        "suffix-host",
        "other-port",
        "address",
        "file-not-allowed",
    ],  # fmt: skip
)
def test_other_schemes_hosts_ports_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        sources.check_git_url(url, HOSTS, allow_local=False)
    assert list(caught.value.details["fields"]) == ["url"]


def test_file_urls_are_accepted_only_when_local_git_is_allowed() -> None:
    sources.check_git_url("file:///srv/repos/tools", [], allow_local=True)
    with pytest.raises(Unprocessable):
        sources.check_git_url("https://github.com/acme/tools.git", [], allow_local=True)


@pytest.mark.parametrize("ref", ["--upload-pack=/bin/sh", "-x", "   ", "r" * 256])
async def test_a_git_ref_that_could_be_an_option_or_is_blank_is_refused(ref: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        await sources.fetch_git("https://github.com/acme/tools.git", ref, SETTINGS)
    assert list(caught.value.details["fields"]) == ["ref"]
