"""Catalog scans end to end: the registry's work queue, the sandbox's confined scanner, snapshots.

The test inserts the MCP, version and source rows itself (the catalog routes are another part's)
and requests scans through the outbox, as the catalog does, or through the rescan route.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from libs.common import db as dbmod
from libs.common import outbox
from libs.common.bus import Bus
from libs.common.events import SCAN_REQUESTED, Event, ScanRequested
from services.registry.app import create_app as create_registry
from services.registry.catalog import scans
from services.registry.context import Registry
from services.registry.crypto import SecretBox
from services.registry.settings import RegistrySettings
from tests.integration.sandbox.conftest import SCAN_MAX_SOURCE_BYTES
from tests.support import serving, settings_for, tarballs
from tests.support.auth import AuthClient
from tests.support.registry import MASTER_KEY

# 700 KB of incompressible bytes in a vendored directory: two source chunks, no findings
BLOB = os.urandom(700_000)
requested: list[Event] = []  # the scan requests this module stored, newest last


@pytest.fixture(scope="module")
async def db(pg_url: str, registry: str) -> Any:
    conn = await asyncpg.connect(pg_url)
    yield conn
    await conn.close()


async def add_version(
    db: asyncpg.Connection, source: bytes | None, request: bool = True
) -> tuple[str, str]:
    """A public MCP with one PENDING version of `source`; its scan requested via the outbox."""
    mcp_id, version_id = uuid.uuid4(), uuid.uuid4()
    async with db.transaction():
        await db.execute(
            "INSERT INTO registry.mcps (id, name, visibility) VALUES ($1, $2, 'public')",
            mcp_id,
            f"scan-{mcp_id.hex[:8]}",
        )
        await db.execute(
            "INSERT INTO registry.mcp_versions (id, mcp_id, visible_version, source_kind,"
            " source_size) VALUES ($1, $2, 'v1', 'tarball', $3)",
            version_id,
            mcp_id,
            len(source or b""),
        )
        if source is not None:
            await db.execute(
                "INSERT INTO registry.version_sources (version_id, tarball) VALUES ($1, $2)",
                version_id,
                source,
            )
        if request:
            event = SCAN_REQUESTED.event(ScanRequested(str(version_id)), source="registry")
            await outbox.enqueue(db, "registry", event)
            requested.append(event)
    return str(mcp_id), str(version_id)


async def settled(db: asyncpg.Connection, version_id: str, snapshots: int = 1) -> Any:
    """The version once its scan ended (and, when certified, `snapshots` snapshots exist)."""
    async with asyncio.timeout(150):
        while True:
            row = await db.fetchrow(
                "SELECT status, status_error, (SELECT count(*) FROM registry.snapshots s"
                " WHERE s.version_id = v.id) AS snapshots FROM registry.mcp_versions v"
                " WHERE v.id = $1",
                uuid.UUID(version_id),
            )
            if row["status"] in ("FAILED", "ERROR") or row["snapshots"] >= snapshots:
                if row["status"] not in ("PENDING", "SCANNING"):
                    return row
            await asyncio.sleep(0.3)


async def results(api: httpx.AsyncClient, mcp: str, version: str) -> dict[str, Any]:
    base = f"/api/v1/mcps/{mcp}/versions/{version}"
    out = {}
    for name in ("snapshot/latest", "controls", "scores"):
        resp = await api.get(f"{base}/{name}")
        assert resp.status_code == 200, resp.text
        out[name] = resp.json()
    return out


def duplicates() -> float:
    """Scan requests the registry found already stored (switchboard_registry_scans_total)."""
    value = REGISTRY.get_sample_value("switchboard_registry_scans_total", {"outcome": "duplicate"})
    return value or 0.0


def failed(body: dict[str, Any]) -> set[str]:
    return {c["control_id"] for c in body["controls"]["controls"] if not c["passed"]}


async def test_a_risky_source_fails_its_controls_and_grades_below_a_clean_one(
    db: asyncpg.Connection, reg_api: httpx.AsyncClient, sandbox: Any
) -> None:
    clean_src = tarballs.build(
        {**tarballs.COMMON, "server.py": tarballs.CLEAN_SERVER,
         "requirements.txt": "requests==2.32.3\n", "node_modules/blob/data.bin": BLOB}
    )  # fmt: skip
    assert len(clean_src) > 512 * 1024  # pulled in more than one chunk
    clean_mcp, clean_version = await add_version(db, clean_src)
    risky_mcp, risky_version = await add_version(db, tarballs.risky())
    clean_row = await settled(db, clean_version)
    risky_row = await settled(db, risky_version)
    assert clean_row["status"] == "CERTIFIED", clean_row["status_error"]
    assert risky_row["status"] == "CERTIFIED", risky_row["status_error"]
    clean = await results(reg_api, clean_mcp, clean_version)
    risky = await results(reg_api, risky_mcp, risky_version)
    assert failed(clean) == set(), clean["controls"]
    assert {"SECRET_EXPOSED", "VULNERABLE_DEPENDENCY", "TOOL_POISONING"} <= failed(risky)
    assert clean["scores"]["grade"] == "A"
    assert risky["scores"]["global_score"] < clean["scores"]["global_score"]
    assert risky["scores"]["grade"] > clean["scores"]["grade"]  # B.. F sort after A
    snap = risky["snapshot/latest"]
    assert snap["critical_findings"] >= 2 and snap["controls_catalog_version"] == "v1.0"
    assert snap["isolation"] == sandbox.state.runtime.tier != "none"  # confined, not in-process
    assert "bandit:" in snap["toolchain_version"] and "detect-secrets:" in snap["toolchain_version"]
    assert [t["name"] for t in snap["tools"]] == ["run"]
    secret = next(c for c in risky["controls"]["controls"] if c["control_id"] == "SECRET_EXPOSED")
    assert "AKIA" not in str(secret) and secret["evidence"][0]["file"] == "server.py"
    vuln = next(
        c for c in risky["controls"]["controls"] if c["control_id"] == "VULNERABLE_DEPENDENCY"
    )
    assert "GHSA-sb01-test-reqs" in vuln["evidence"][0]["detail"]
    weights = {k: v["weight"] for k, v in risky["scores"]["scores"].items()}
    assert weights == {"security": 0.5, "supply_chain": 0.3, "maturity": 0.2}
    mcp_license = await db.fetchval(
        "SELECT license FROM registry.mcps WHERE id = $1", uuid.UUID(risky_mcp)
    )
    assert mcp_license == "MIT"  # filled from the scan


async def test_a_rescan_of_the_same_source_gives_identical_scores_and_controls(
    db: asyncpg.Connection, reg_api: httpx.AsyncClient, admin: dict[str, str], sandbox: Any
) -> None:
    mcp, version = await add_version(db, tarballs.risky())
    await settled(db, version)
    first = await results(reg_api, mcp, version)
    anonymous = await reg_api.post(f"/api/v1/mcps/{mcp}/versions/{version}/scan")
    assert anonymous.status_code == 401
    resp = await reg_api.post(f"/api/v1/mcps/{mcp}/versions/{version}/scan", headers=admin)
    assert resp.status_code == 202, resp.text
    assert (await settled(db, version, snapshots=2))["status"] == "CERTIFIED"
    second = await results(reg_api, mcp, version)
    assert second["snapshot/latest"]["id"] != first["snapshot/latest"]["id"]
    assert second["scores"] | {"snapshot_id": None} == first["scores"] | {"snapshot_id": None}

    def strip(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "id"} for c in body["controls"]["controls"]]

    assert strip(second) == strip(first)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (tarballs.zip_slip(), "path traversal"),
        (tarballs.symlink_escape(), "points outside the tree"),
        (os.urandom(SCAN_MAX_SOURCE_BYTES + 500_000), "over the limit"),
    ],
    ids=["zip-slip", "symlink-escape", "too-large"],
)
async def test_unsafe_or_oversized_sources_end_failed_with_the_reason(
    db: asyncpg.Connection, reg_api: httpx.AsyncClient, sandbox: Any, source: bytes, reason: str
) -> None:
    mcp, version = await add_version(db, source)
    row = await settled(db, version)
    assert row["status"] == "FAILED" and reason in row["status_error"]
    assert row["snapshots"] == 0
    resp = await reg_api.get(f"/api/v1/mcps/{mcp}/versions/{version}/snapshot/latest")
    assert resp.status_code == 404
    assert resp.json()["error"]["details"]["status"] == "FAILED"


async def test_a_private_mcp_of_another_org_answers_404(
    db: asyncpg.Connection, reg_api: httpx.AsyncClient, sandbox: Any
) -> None:
    mcp, version = await add_version(db, tarballs.clean(), request=False)
    await db.execute(
        "UPDATE registry.mcps SET visibility = 'private', org = 'some-other-org' WHERE id = $1",
        uuid.UUID(mcp),
    )
    for name in ("snapshot/latest", "controls", "scores"):
        resp = await reg_api.get(f"/api/v1/mcps/{mcp}/versions/{version}/{name}")
        assert resp.status_code == 404
        assert resp.json()["error"]["details"] == {"mcp": mcp}
    for odd in ("a%00b", "x" * 300, "%F0%9F%92%A9"):
        resp = await reg_api.get(f"/api/v1/mcps/{odd}/versions/{odd}/scores")
        assert resp.status_code in (400, 404), resp.text
    public, _ = await add_version(db, tarballs.clean(), request=False)
    resp = await reg_api.get(f"/api/v1/mcps/{public}/versions/a%00b/scores")
    assert resp.status_code in (400, 404), resp.text


async def test_a_source_the_sandbox_cannot_get_ends_error_after_the_retries(
    db: asyncpg.Connection, sandbox: Any
) -> None:
    _, version = await add_version(db, None)  # no version_sources row: every pull is refused
    row = await settled(db, version)
    assert row["status"] == "ERROR" and "No source" in row["status_error"]


async def test_a_redelivered_request_stores_nothing_twice(
    db: asyncpg.Connection, pg_url: str, nats_url: str, namespace: str, bus: Bus, sandbox: Any
) -> None:
    _, version = await add_version(db, tarballs.clean())
    event = requested[-1]
    assert (await settled(db, version))["status"] == "CERTIFIED"
    settings = settings_for(
        RegistrySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace,
        REGISTRY_MASTER_KEY=MASTER_KEY,
    )  # fmt: skip
    box = SecretBox.from_settings(settings.master_keys, settings.master_key, settings.master_key_id)
    before = duplicates()
    async with dbmod.open_pool(settings) as pool:
        await scans.on_scan_requested(Registry(pool, bus, settings, box), event)
    assert duplicates() == before + 1
    count = await db.fetchval(
        "SELECT count(*) FROM registry.snapshots WHERE version_id = $1", uuid.UUID(version)
    )
    assert count == 1


async def test_a_private_mcp_is_read_by_its_org_and_rescanned_by_its_admins_only(
    db: asyncpg.Connection, reg_api: httpx.AsyncClient, auth: AuthClient, sandbox: Any
) -> None:
    org = await auth.create_org()
    other = await auth.create_org()
    tokens = {}
    for role, org_id in (("member", org["id"]), ("admin", org["id"]), ("outsider", other["id"])):
        user = await auth.create_user()
        await auth.add_org_member(org_id, user, "admin" if role != "member" else "member")
        tokens[role] = auth.bearer((await auth.login(user.username, user.password))["access_token"])
    mcp, version = await add_version(db, tarballs.clean(), request=False)
    await db.execute(
        "UPDATE registry.mcps SET visibility = 'private', org = $2 WHERE id = $1",
        uuid.UUID(mcp),
        org["id"],
    )
    base = f"/api/v1/mcps/{mcp}/versions/{version}"
    outsider = await reg_api.get(f"{base}/scores", headers=tokens["outsider"])
    assert outsider.status_code == 404 and outsider.json()["error"]["details"] == {"mcp": mcp}
    assert (await reg_api.post(f"{base}/scan", headers=tokens["outsider"])).status_code == 404
    assert (await reg_api.post(f"{base}/scan", headers=tokens["member"])).status_code == 403
    pending = await reg_api.get(f"{base}/scores", headers=tokens["member"])
    assert pending.status_code == 404 and pending.json()["error"]["details"]["status"] == "PENDING"
    assert (await reg_api.post(f"{base}/scan", headers=tokens["admin"])).status_code == 202
    assert (await settled(db, version))["status"] == "CERTIFIED"
    scores = await reg_api.get(f"{base}/scores", headers=tokens["member"])
    assert scores.status_code == 200 and scores.json()["grade"] == "A"


async def test_the_scan_queue_is_shared_by_every_registry_replica(
    db: asyncpg.Connection, pg_url: str, nats_url: str, namespace: str, sandbox: Any
) -> None:
    second = settings_for(
        RegistrySettings,
        pg_url=pg_url,
        nats_url=nats_url,
        namespace=namespace,
        REGISTRY_MASTER_KEY=MASTER_KEY,
        REGISTRY_HEALTH_ENABLED="false",
        SWITCHBOARD_INSTANCE="registry-b",
    )
    async with serving(create_registry(second)):
        versions = [(await add_version(db, tarballs.clean()))[1] for _ in range(6)]
        rows = [await settled(db, version) for version in versions]
        assert {r["status"] for r in rows} == {"CERTIFIED"}
        scanned_by = await db.fetch(
            "SELECT DISTINCT scanned_by FROM registry.snapshots WHERE version_id = ANY($1)",
            [uuid.UUID(v) for v in versions],
        )
    # one request at a time per replica: while one scans, the other takes the next
    assert len({r["scanned_by"] for r in scanned_by}) == 2, scanned_by
