"""Which sandbox path a call takes: a code server by the caller's word, no lookup per call."""

from __future__ import annotations

from services.sandbox.rpc import _is_code


class Table:
    """The code tools' table: counts its lookups."""

    def __init__(self, servers: set[str]) -> None:
        self.servers = servers
        self.lookups = 0

    async def hosts(self, name: str) -> bool:
        self.lookups += 1
        return name in self.servers


async def test_a_caller_naming_the_transport_is_believed_without_a_lookup() -> None:
    table = Table({"tools-a"})
    assert await _is_code(table, "tools-a", "code") is True
    assert await _is_code(table, "weather", "stdio") is False
    assert await _is_code(table, "code", None) is True
    assert table.lookups == 0


async def test_a_caller_that_does_not_say_gets_the_tables_answer() -> None:
    table = Table({"tools-a"})
    assert await _is_code(table, "tools-a", None) is True
    assert await _is_code(table, "weather", None) is False
    assert table.lookups == 2
