"""Catalog test helpers.

Rows written with SQL (MCPs, versions, snapshots, control results), tarballs, a local git
repository, MCPs made by the platform admin."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx


@dataclass(frozen=True)
class Version:
    """What `insert_version` wrote."""

    mcp_id: uuid.UUID
    version_id: uuid.UUID
    snapshot_id: uuid.UUID | None
    mcp: str
    visible_version: str


def sha256(text: str) -> str:
    """The hex SHA-256 of a text (as snapshots.tools give description_sha256)."""
    return hashlib.sha256(text.encode()).hexdigest()


async def insert_version(
    pool: asyncpg.Pool,
    mcp: str,
    *,
    visible_version: str = "commit-a3f91c2-2026-01-14",
    org: str | None = None,
    visibility: str = "public",
    license: str | None = "MIT",
    score: int | None = 85,
    failed: tuple[str, ...] = (),
    tools: list[dict[str, Any]] | None = None,
) -> Version:
    """An MCP (made when absent) with a version and, unless `score` is None, a snapshot."""
    async with pool.acquire() as conn, conn.transaction():
        mcp_id = await conn.fetchval(
            "SELECT id FROM registry.mcps WHERE name = $1 AND org IS NOT DISTINCT FROM $2",
            mcp,
            org,
        )
        if mcp_id is None:
            mcp_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO registry.mcps (id, name, org, visibility, license)"
                " VALUES ($1, $2, $3, $4, $5)",
                mcp_id, mcp, org, visibility, license,
            )  # fmt: skip
        version_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO registry.mcp_versions (id, mcp_id, visible_version, source_kind, status)"
            " VALUES ($1, $2, $3, 'tarball', 'CERTIFIED')",
            version_id, mcp_id, visible_version,
        )  # fmt: skip
        snapshot_id = None
        if score is not None:
            snapshot_id = await add_snapshot(conn, version_id, score, failed, tools or [])
    return Version(mcp_id, version_id, snapshot_id, mcp, visible_version)


async def add_snapshot(
    conn: asyncpg.Connection,
    version_id: uuid.UUID,
    score: int,
    failed: tuple[str, ...] = (),
    tools: list[dict[str, Any]] | None = None,
) -> uuid.UUID:
    """A new (latest) snapshot of a version with `failed` controls failed and one passed."""
    snapshot_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO registry.snapshots (id, version_id, global_score, security_score,"
        " supply_chain_score, maturity_score, grade, scores, toolchain_version, scoring_version,"
        " controls_catalog_version, tools, created_at)"
        " VALUES ($1, $2, $3, $3, $3, $3, $4, '{}', 't1', 's1', 'c1', $5::jsonb,"
        "  clock_timestamp())",
        snapshot_id, version_id, score, "A" if score >= 90 else "F" if score < 50 else "C",
        tools or [],
    )  # fmt: skip
    for control, passed in [*((c, False) for c in failed), ("DOC-001", True)]:
        await conn.execute(
            "INSERT INTO registry.control_results (id, snapshot_id, control_id, control_name,"
            " control_category, passed, severity) VALUES ($1, $2, $3, $3, 'security', $4, 'high')",
            uuid.uuid4(), snapshot_id, control, passed,
        )  # fmt: skip
    return snapshot_id


async def empty_catalog(pool: asyncpg.Pool) -> None:
    """Delete every catalog row.

    MCPs (with everything under them), policies, categories, tags, reports and webhook
    deliveries."""
    async with pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM registry.reports; DELETE FROM registry.policies;"
            " DELETE FROM registry.mcps; DELETE FROM registry.categories;"
            " DELETE FROM registry.tags; DELETE FROM registry.webhook_deliveries"
        )


GZIP = {"Content-Type": "application/gzip"}


def tarball(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A tar.gz of the files (and symbolic links)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def git_repo(path: Path) -> str:
    """A local repository with one commit on `main`; returns its commit sha."""
    env = {"GIT_AUTHOR_DATE": "2026-01-14T10:00:00Z", "GIT_COMMITTER_DATE": "2026-01-14T10:00:00Z",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin", "HOME": str(path)}  # fmt: skip
    path.mkdir()
    (path / "README.md").write_text("# demo\n")
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


async def stored_versions(pool: asyncpg.Pool) -> tuple[int, int]:
    """How many versions and version sources are stored."""
    async with pool.acquire() as conn:
        versions = await conn.fetchval("SELECT count(*) FROM registry.mcp_versions")
        sources = await conn.fetchval("SELECT count(*) FROM registry.version_sources")
    return versions, sources


CONTROLS = [
    # (id, name, category, passed, severity, message, findings)
    ("SEC-001", "No exposed secrets", "security", False, "critical", "1 secret in config.py", 1),
    ("SUP-002", "Lockfile present", "supply_chain", True, "medium", "poetry.lock found", 0),
    ("MAT-001", "README present", "maturity", True, "low", "README.md found", 0),
]


async def insert_mcp(
    conn: asyncpg.Connection,
    name: str,
    org: str | None,
    visibility: str = "private",
    repo_url: str | None = None,
) -> uuid.UUID:
    """A catalog entry."""
    mcp_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO registry.mcps (id, name, org, visibility, repo_url)"
        " VALUES ($1, $2, $3, $4, $5)",
        mcp_id,
        name,
        org,
        visibility,
        repo_url,
    )
    return mcp_id


async def insert_snapshot(
    conn: asyncpg.Connection,
    mcp_id: uuid.UUID,
    version: str = "commit-abc1234-20261201",
    grade: str = "C",
    created_at: datetime | None = None,
) -> uuid.UUID:
    """A version of the MCP with one snapshot and the CONTROLS' results."""
    version_id, snapshot_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO registry.mcp_versions (id, mcp_id, visible_version, source_kind, status)"
        " VALUES ($1, $2, $3, 'tarball', 'CERTIFIED')",
        version_id,
        mcp_id,
        version,
    )
    scores: dict[str, Any] = {"security": {"score": 40}, "supply_chain": {"score": 70}}
    await conn.execute(
        "INSERT INTO registry.snapshots (id, version_id, global_score, security_score,"
        " supply_chain_score, maturity_score, grade, scores, toolchain_version, scoring_version,"
        " controls_catalog_version, total_findings, critical_findings, low_findings, created_at)"
        " VALUES ($1, $2, 61, 40, 70, 80, $3, $4::jsonb, 'tc-1', 'sc-1', 'cc-1', 2, 1, 1,"
        " coalesce($5, now()))",
        snapshot_id,
        version_id,
        grade,
        json.dumps(scores),
        created_at,
    )
    for cid, name, category, passed, severity, message, findings in CONTROLS:
        await conn.execute(
            "INSERT INTO registry.control_results (id, snapshot_id, control_id, control_name,"
            " control_category, passed, severity, message, findings)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            uuid.uuid4(),
            snapshot_id,
            cid,
            name,
            category,
            passed,
            severity,
            message,
            findings,
        )
    return snapshot_id
