"""Workspace files: the usual operations work; every way out of the workspace is refused."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
import zipfile
from typing import Any

import httpx

FILES = "/api/v1/sandbox/files"


def zip_of(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    """A zip archive (optionally with a symlink member)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo("link")
            info.external_attr = (0o120777) << 16
            zf.writestr(info, symlink)
    return buf.getvalue()


def tar_with_symlink(target: str) -> bytes:
    """A tar archive holding one symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("escape")
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tf.addfile(info)
    return buf.getvalue()


async def test_files_are_written_listed_read_downloaded_and_deleted(
    api: httpx.AsyncClient, admin: dict
) -> None:
    top = f"t-{secrets.token_hex(3)}"
    made = await api.post(f"{FILES}/mkdir", json={"path": f"{top}/sub"}, headers=admin)
    assert made.status_code == 201
    wrote = await api.put(
        f"{FILES}/content", json={"path": f"{top}/sub/a.txt", "content": "hi"}, headers=admin
    )
    assert wrote.status_code == 200
    assert wrote.json()["size"] == 2
    listed = await api.get(FILES, params={"path": f"{top}/sub"}, headers=admin)
    assert [e["name"] for e in listed.json()["items"]] == ["a.txt"]
    read = await api.get(f"{FILES}/content", params={"path": f"{top}/sub/a.txt"}, headers=admin)
    assert read.json()["content"] == "hi"
    up = await api.post(
        f"{FILES}/upload", params={"path": f"{top}/b.bin"}, content=b"\x00\x01", headers=admin
    )
    assert up.status_code == 201
    down = await api.get(f"{FILES}/download", params={"path": f"{top}/b.bin"}, headers=admin)
    assert down.content == b"\x00\x01"
    archive = zip_of({"x/one.txt": b"1", "two.txt": b"2"})
    unpacked = await api.post(
        f"{FILES}/upload",
        params={"path": top, "extract": "true", "name": "a.zip"},
        content=archive,
        headers=admin,
    )
    assert unpacked.status_code == 201
    assert sorted(unpacked.json()["extracted"]) == [f"{top}/two.txt", f"{top}/x/one.txt"]
    gone = await api.delete(FILES, params={"path": top}, headers=admin)
    assert gone.status_code == 204
    missing = await api.get(FILES, params={"path": top}, headers=admin)
    assert missing.status_code == 404


async def test_every_way_out_of_the_workspace_is_refused(
    api: httpx.AsyncClient, admin: dict, sandbox: Any
) -> None:
    root = sandbox.state.runtime.workspace.root
    link = f"out-{secrets.token_hex(3)}"
    os.symlink("/etc", root / link)
    try:
        for path in ("../x", "a/../../x", "/etc/passwd", "a\\..\\b", f"{link}/passwd", "x\x00y"):
            for method, url, kw in (
                ("GET", f"{FILES}/content", {"params": {"path": path}}),
                ("GET", FILES, {"params": {"path": path}}),
                ("PUT", f"{FILES}/content", {"json": {"path": path, "content": "x"}}),
                ("DELETE", FILES, {"params": {"path": path}}),
            ):
                resp = await api.request(method, url, headers=admin, **kw)
                # NUL in a JSON body is refused with the other field errors (422)
                want = 422 if "\x00" in path and "json" in kw else 400
                assert resp.status_code == want, (method, path, resp.text)
                assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        slip = zip_of({"../../evil.txt": b"x"})
        for name, data in (
            ("slip.zip", slip),
            ("link.zip", zip_of({}, symlink="/etc/passwd")),
            ("link.tar", tar_with_symlink("/etc/passwd")),
            ("abs.zip", zip_of({"/abs.txt": b"x"})),
        ):
            resp = await api.post(
                f"{FILES}/upload",
                params={"path": "", "extract": "true", "name": name},
                content=data,
                headers=admin,
            )
            assert resp.status_code == 400, (name, resp.text)
        assert not (root.parent / "evil.txt").exists()
    finally:
        (root / link).unlink()


async def test_oversize_files_and_archive_bombs_are_refused(
    api: httpx.AsyncClient, admin: dict, sandbox: Any
) -> None:
    limit = sandbox.state.runtime.workspace.max_file_bytes
    big = await api.post(
        f"{FILES}/upload", params={"path": "big.bin"}, content=b"x" * (limit + 1), headers=admin
    )
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    extract_limit = sandbox.state.runtime.workspace.max_extract_bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\x00" * (extract_limit + 1))
    bomb = await api.post(
        f"{FILES}/upload",
        params={"path": "", "extract": "true", "name": "bomb.zip"},
        content=buf.getvalue(),
        headers=admin,
    )
    assert bomb.status_code == 413


async def test_files_are_for_platform_admins(api: httpx.AsyncClient, auth: Any) -> None:
    user = await auth.create_user()
    resp = await api.get(FILES, headers=auth.bearer(user.token))
    assert resp.status_code == 403
    assert (await api.get(FILES)).status_code == 401


async def test_a_name_longer_than_the_file_system_takes_is_refused_not_a_500(
    api: httpx.AsyncClient, admin: dict
) -> None:
    for path in ("0" * 2000, f"a/{'b' * 300}/c"):
        for method, url, kw in (
            ("POST", f"{FILES}/mkdir", {"json": {"path": path}}),
            ("PUT", f"{FILES}/content", {"json": {"path": path, "content": "x"}}),
            ("GET", f"{FILES}/content", {"params": {"path": path}}),
        ):
            resp = await api.request(method, url, headers=admin, **kw)
            assert resp.status_code == 400, (method, path[:20], resp.text)
            assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_the_mcphubs_multipart_upload_writes_files_and_auto_extracts_archives(
    api: httpx.AsyncClient, admin: dict, sandbox: Any
) -> None:
    root = sandbox.state.runtime.workspace.root
    top = f"mp-{secrets.token_hex(3)}"
    assert (await api.post(f"{FILES}/mkdir", json={"path": top}, headers=admin)).status_code == 201
    upload = f"{FILES}/upload"
    plain = await api.post(
        f"{upload}?path={top}&auto_extract=false",
        files={"file": ("../notes.txt", b"hello", "text/plain")},
        headers=admin,
    )
    assert plain.status_code == 201, plain.text
    assert (root / top / "notes.txt").read_bytes() == b"hello"
    kept = await api.post(
        f"{upload}?path={top}&auto_extract=false",
        files={"file": ("kept.zip", zip_of({"a.txt": b"a"}), "application/zip")},
        headers=admin,
    )
    assert kept.status_code == 201 and (root / top / "kept.zip").is_file()
    unpacked = await api.post(
        f"{upload}?path={top}&auto_extract=true",
        files={"file": ("site.zip", zip_of({"x/one.txt": b"1", "two.txt": b"2"}))},
        headers=admin,
    )
    assert unpacked.status_code == 201, unpacked.text
    assert sorted(unpacked.json()["extracted"]) == [f"{top}/two.txt", f"{top}/x/one.txt"]
    assert (root / top / "x" / "one.txt").read_bytes() == b"1"
    for name, data in (
        ("slip.zip", zip_of({"../../evil.txt": b"x"})),
        ("link.zip", zip_of({}, symlink="/etc/passwd")),
        ("link.tar", tar_with_symlink("/etc/passwd")),
    ):
        refused = await api.post(
            f"{upload}?path={top}&auto_extract=true", files={"file": (name, data)}, headers=admin
        )
        assert refused.status_code == 400, (name, refused.text)
        assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not (root.parent / "evil.txt").exists() and not (root / top / "link").exists()
    empty = await api.post(upload, data={"path": top}, files={}, headers=admin)
    assert empty.status_code in (400, 415)
    await api.delete(FILES, params={"path": top}, headers=admin)
