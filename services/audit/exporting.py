"""Streaming a filtered query as CSV or NDJSON, row by row from a server-side cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import asyncpg
from starlette.responses import StreamingResponse

from services.audit.schemas import csv_line, ndjson_line

Rows = Callable[[asyncpg.Connection], AsyncIterator[asyncpg.Record]]


def stream(
    pool: asyncpg.Pool,
    rows: Rows,
    fmt: str,
    columns: Sequence[str],
    shape: Callable[[Mapping[str, Any]], dict[str, Any]],
    name: str,
) -> StreamingResponse:
    """A streamed export of `rows` (read inside one transaction, so the cursor lives)."""

    async def body() -> AsyncIterator[bytes]:
        if fmt == "csv":
            yield csv_line(columns)
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for row in rows(conn):
                doc = shape(row)
                yield csv_line([doc.get(c) for c in columns]) if fmt == "csv" else ndjson_line(doc)

    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return StreamingResponse(body(), media_type=media, headers=headers)
