"""Catalog test helpers: tarballs, a local git repository, MCPs made by the platform admin."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import asyncpg
import httpx

GZIP = {"Content-Type": "application/gzip"}


def tarball(files: dict[str, bytes]) -> bytes:
    """A tar.gz of the files."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def git_repo(path: Path) -> str:
    """A local repository with one commit on `main`; returns its commit sha."""
    env = {"GIT_AUTHOR_DATE": "2026-01-14T10:00:00Z", "GIT_COMMITTER_DATE": "2026-01-14T10:00:00Z",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin", "HOME": str(path)}  # fmt: skip
    path.mkdir()
    (path / "server.py").write_text("print('hi')\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env)
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


async def new_mcp(api: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    """Create an MCP as the platform admin (public unless said otherwise)."""
    resp = await api.post("/api/v1/mcps", json={"name": name, "visibility": "public", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def empty_catalog(pool: asyncpg.Pool) -> None:
    """Delete every MCP (with its versions), category and tag."""
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM registry.mcps; DELETE FROM registry.categories;"
                           " DELETE FROM registry.tags")  # fmt: skip


async def stored_versions(pool: asyncpg.Pool) -> tuple[int, int]:
    """How many versions and version sources are stored."""
    async with pool.acquire() as conn:
        versions = await conn.fetchval("SELECT count(*) FROM registry.mcp_versions")
        sources = await conn.fetchval("SELECT count(*) FROM registry.version_sources")
    return versions, sources
