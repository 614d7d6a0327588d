"""Numbered-parameter SQL pieces: WHERE clauses, SET lists, and one paged select for lists."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery


class Where:
    """Conditions joined with AND; `add` numbers the placeholders."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        """Register a parameter and return its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, template: str, *values: Any) -> None:
        """Add a condition; `{}` in the template are replaced by placeholders in order."""
        self.parts.append(template.format(*(self.arg(v) for v in values)))

    def search(self, columns: Sequence[str], q: str | None) -> None:
        """Match `q` as a case-insensitive substring of any of the columns (nothing when empty)."""
        if q:
            n = self.arg(f"%{q}%")
            self.parts.append(f"({' OR '.join(f'{col} ILIKE {n}' for col in columns)})")

    @property
    def sql(self) -> str:
        """The WHERE clause (or nothing)."""
        return f" WHERE {' AND '.join(self.parts)}" if self.parts else ""


def assignments(
    fields: Mapping[str, Any], allowed: Collection[str] | None = None
) -> tuple[str, list[Any]]:
    """`col = $2, …, updated_at = now()` for the given (allowed) fields, $1 being the row id."""
    names = [name for name in fields if allowed is None or name in allowed]
    sets = [f"{name} = ${i}" for i, name in enumerate(names, start=2)]
    return ", ".join([*sets, "updated_at = now()"]), [fields[name] for name in names]


async def fetch_page(
    conn: asyncpg.Connection,
    columns: str,
    source: str,
    where: Where,
    query: ListQuery,
    order: str,
) -> tuple[list[asyncpg.Record], int]:
    """One page of `SELECT columns FROM source WHERE … ORDER BY order` and the total matching."""
    total = await conn.fetchval(f"SELECT count(*) FROM {source}{where.sql}", *where.args)
    n = len(where.args)
    rows = await conn.fetch(
        f"SELECT {columns} FROM {source}{where.sql} ORDER BY {order}"
        f" LIMIT ${n + 1} OFFSET ${n + 2}",
        *where.args,
        query.page_size,
        query.offset,
    )
    return rows, total
