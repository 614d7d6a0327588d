"""The project lint: each rule catches its sample and lets the allowed forms through."""

from __future__ import annotations

import textwrap
from pathlib import Path

from libs.devstack.lint.__main__ import main
from libs.devstack.lint.cycles import strongly_connected
from libs.devstack.lint.run import lint


def write(root: Path, files: dict[str, str]) -> Path:
    """Lay out sample files under root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def found(root: Path, rule: str) -> list[str]:
    """The `path:line` of each finding of `rule`."""
    return [f"{f.path}:{f.line}" for f in lint(root) if f.rule == rule]


def test_sql_outside_a_store_module_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/reg/servers.py": '''
                """Servers."""
                Q = "SELECT id FROM reg.servers"
                async def go(conn, x):
                    await conn.execute(f"DELETE FROM reg.t WHERE id = {x}")
                    await conn.execute("""
                        UPDATE reg.t SET a = 1""")
                    await conn.execute("WITH x AS (SELECT 1) SELECT * FROM x")
            ''',
            "libs/common/helpers.py": 'Q = "INSERT INTO t VALUES (1)"\n',
        },
    )
    assert found(tmp_path, "sql") == [
        "libs/common/helpers.py:1",
        "services/reg/servers.py:3",
        "services/reg/servers.py:5",
        "services/reg/servers.py:6",
        "services/reg/servers.py:8",
    ]


def test_sql_in_store_modules_migrations_and_prose_is_allowed(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/reg/store.py": 'Q = "SELECT id FROM reg.servers"\n',
            "services/aud/store/alerts.py": 'Q = "DELETE FROM aud.alerts"\n',
            "services/aud/migrations/run.py": 'Q = "CREATE TABLE aud.x ()"\n',
            "libs/common/outbox.py": "Q = \"SELECT pg_notify($1, '')\"\n",
            "services/reg/routes.py": '''
                """SELECT id FROM a docstring is prose."""
                HELP = "Select the servers to update from the list"
                TITLE = "Update settings"
                WORD = "SELECT"
            ''',
        },
    )
    assert found(tmp_path, "sql") == []


def test_subject_and_event_type_literals_outside_libs_common_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/aud/live.py": '''
                """Live."""
                A = "live.sandbox.logs"
                B = f"rpc.auth.{'introspect'}"
                C = ("events.registry.>", "registry.server.deleted")
                D = "services.aud.live"
                E = "gateway.tools"
            ''',
            "libs/common/subjects.py": 'A = "live.sandbox.logs"\nB = "registry.server.deleted"\n',
        },
    )
    assert found(tmp_path, "subject") == [
        "services/aud/live.py:3",
        "services/aud/live.py:4",
        "services/aud/live.py:5",
        "services/aud/live.py:5",
    ]


def test_importing_a_private_name_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/gw/a.py": '"""A."""\ndef _helper(): ...\n',
            "services/gw/b.py": """
                from __future__ import annotations
                from services.gw.a import _helper
                from .a import __doc__
                from . import _a_module
            """,
        },
    )
    assert found(tmp_path, "private-import") == ["services/gw/b.py:3", "services/gw/b.py:5"]


def test_reaching_into_a_bus_connection_is_reported_outside_bus_py(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/gw/relay.py": """
                async def go(self, bus, request, conn):
                    await self.bus.nc.publish("x", b"")
                    await bus.nc.subscribe("x")
                    return request.state.bus.nc.is_connected, conn.nc
            """,
            "libs/common/bus.py": "def connected(self):\n    return self.nc.is_connected\n",
        },
    )
    assert found(tmp_path, "bus-nc") == [
        "services/gw/relay.py:3",
        "services/gw/relay.py:4",
        "services/gw/relay.py:5",
    ]


def test_an_import_cycle_inside_a_service_is_reported_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/gw/__init__.py": "",
            "services/gw/a.py": "from services.gw import b\n",
            "services/gw/b.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from services.gw.c import C
            """,
            "services/gw/c.py": "def f():\n    from .a import x\n",
            "services/gw/d.py": "from services.gw import a\n",
            "services/gw/routes/__init__.py": "",
            "services/gw/routes/mcp.py": "from services.gw.routes import helpers\n",
            "services/gw/routes/helpers.py": "from ..d import y\n",
            "services/other/x.py": "from services.gw import a\n",
        },
    )
    findings = [f for f in lint(tmp_path) if f.rule == "import-cycle"]
    assert [str(f) for f in findings] == ["services/gw/a.py:1: import-cycle: a → b → c → a"]


def test_a_package_importing_its_own_modules_is_no_cycle(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "services/gw/__init__.py": "",
            "services/gw/store/__init__.py": "from services.gw.store import users\n",
            "services/gw/store/users.py": "from services.gw.store import teams\n",
            "services/gw/store/teams.py": "X = 1\n",
        },
    )
    assert found(tmp_path, "import-cycle") == []


def test_tarjan_finds_each_strongly_connected_component() -> None:
    graph = {"a": ["b"], "b": ["c", "d"], "c": ["a"], "d": ["e"], "e": ["d"], "f": ["a"]}
    components = sorted(sorted(c) for c in strongly_connected(graph))
    assert components == [["a", "b", "c"], ["d", "e"], ["f"]]


def test_the_command_prints_one_line_per_finding_and_fails(tmp_path: Path, capsys) -> None:
    write(tmp_path, {"services/gw/relay.py": "def go(bus):\n    return bus.nc\n"})
    assert main([str(tmp_path)]) == 1
    assert capsys.readouterr().out == (
        "services/gw/relay.py:2: bus-nc: bus.nc: use Bus.send/listen/ask/connected\n"
    )
    write(tmp_path, {"services/gw/relay.py": "def go(bus):\n    return bus.connected\n"})
    assert main([str(tmp_path)]) == 0
