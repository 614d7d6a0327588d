"""The per-file rules: SQL outside store modules, subject literals, private imports, bus.nc."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from libs.devstack.lint.sources import Finding, Source

SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")

# libs/common modules that are SQL by nature: the pool's ping, migrations, the outbox relay, the
# query builder behind every list endpoint, and the processed-events record of consumers
ALLOWED_SQL = {
    "libs/common/db.py": "the pool's health ping",
    "libs/common/migrate.py": "applies migrations under an advisory lock",
    "libs/common/outbox.py": "the outbox table every service writes its events to",
    "libs/common/sql.py": "the query builder of the list endpoints",
    "libs/common/idempotence.py": "the processed-events row of transactional consumers",
}
# a statement opens the literal: the keyword pairs make prose ("Select a server") no match
SQL = re.compile(
    r"^\s*(?:"
    r"SELECT\s+(?:[\w*(]|DISTINCT\b).*?(?:\bFROM\b|\(|\$\d|\b\d+\b)"
    r"|INSERT\s+INTO\b|UPDATE\s+[\w.\"]+\s+(?:AS\s+\w+\s+)?SET\b|DELETE\s+FROM\b"
    r"|(?:CREATE|ALTER|DROP)\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|SCHEMA|VIEW|TYPE|FUNCTION|ROLE|"
    r"TRIGGER|SEQUENCE|EXTENSION|DATABASE)\b"
    r"|TRUNCATE\b|WITH\s+(?:RECURSIVE\s+)?\w+\s+AS\s*\("
    r")",
    re.DOTALL,
)
SUBJECT = re.compile(r"^(?:events|live|rpc)\.[\w*>{}]")
EVENT_TYPE = re.compile(rf"^(?:{'|'.join(SERVICES)})\.[a-z_]+\.[a-z_]+$")
SUBJECT_HOMES = ("libs/common/",)


def in_store(source: Source) -> bool:
    """Whether the file is a store module, a migration or one of ALLOWED_SQL."""
    parts = source.path.parts
    return (
        "store" in parts[:-1]
        or source.path.name == "store.py"
        or "migrations" in parts
        or source.rel in ALLOWED_SQL
    )


def sql_outside_store(source: Source) -> Iterator[Finding]:
    """SQL statements in string literals of services and libs/common outside store modules."""
    if not source.rel.startswith(("services/", "libs/common/")) or in_store(source):
        return
    for node, text in source.strings():
        match = SQL.match(text)
        if match:
            statement = text.split(None, 1)[0]
            yield source.finding(node, "sql", f"{statement} statement outside a store module")


def subject_literals(source: Source) -> Iterator[Finding]:
    """NATS subjects and event types spelled outside libs/common."""
    if source.rel.startswith(SUBJECT_HOMES) or not source.rel.startswith("services/"):
        return
    for node, text in source.strings():
        if SUBJECT.match(text):
            yield source.finding(
                node, "subject", f"subject {text!r} belongs in libs/common (subjects.py, rpc.py)"
            )
        elif EVENT_TYPE.match(text):
            yield source.finding(
                node, "subject", f"event type {text!r} belongs in libs/common/events.py"
            )


def private_imports(source: Source) -> Iterator[Finding]:
    """`from x import _y`: a name another module uses is public."""
    for node in ast.walk(source.tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    where = "." * node.level + (node.module or "")
                    yield source.finding(
                        node, "private-import", f"{alias.name} is private to {where}"
                    )


def bus_nc(source: Source) -> Iterator[Finding]:
    """`<bus>.nc` outside libs/common/bus.py: core NATS goes through Bus.send/listen/ask."""
    if source.rel == "libs/common/bus.py":
        return
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Attribute) and node.attr == "nc" and _names_a_bus(node.value):
            yield source.finding(
                node, "bus-nc", f"{ast.unparse(node)}: use Bus.send/listen/ask/connected"
            )


def _names_a_bus(node: ast.expr) -> bool:
    """Whether an expression names a Bus by the project's spelling (`bus`, `self.bus`, ...)."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name.lstrip("_").endswith("bus")


PER_FILE = (sql_outside_store, subject_literals, private_imports, bus_nc)
