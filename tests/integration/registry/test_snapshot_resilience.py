"""One server whose secrets no configured key opens must not take the whole snapshot down."""

from typing import Any

from libs.common.rpc_types import SnapshotRequest
from services.registry.context import Registry
from services.registry.rpc import snapshot


async def test_a_server_sealed_under_an_unknown_key_is_left_out_and_paging_ends(
    api: Any, reg: Registry
) -> None:
    for name in ("sealed-ok", "sealed-lost"):
        body = {"name": name, "transport": "stdio", "command": "npx", "enabled": False,
                "env": {"TOKEN": "t0ken"}}  # fmt: skip
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    try:
        async with reg.pool.acquire() as conn:
            await conn.execute(
                "UPDATE registry.secrets SET key_id = 'gone' WHERE server_id ="
                " (SELECT id FROM registry.servers WHERE name = 'sealed-lost')"
            )
        names: list[str] = []
        offset: int | None = 0
        pages = 0
        while offset is not None:
            page = await snapshot(reg, SnapshotRequest(offset=offset, limit=1))
            names += [s.name for s in page.servers]
            offset = page.next_offset
            pages += 1
            assert pages < 1000, "paging never ends"
        assert "sealed-ok" in names
        assert "sealed-lost" not in names
        ok = await snapshot(reg, SnapshotRequest(names=["sealed-ok"]))
        assert ok.servers[0].env == {"TOKEN": "t0ken"}
    finally:
        for name in ("sealed-ok", "sealed-lost"):
            await api.delete(f"/api/v1/servers/{name}")
