"""Who may read and write a server and its tools (pure logic on principals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libs.common.authn import Grant, Principal
from services.registry import permissions

SERVER = {"name": "weather", "org": "o1", "owner_team": "owners"}


@dataclass(frozen=True)
class TeamPrincipal(Principal):
    """A principal whose credential carries team roles (as auth may issue them)."""

    team_roles: dict[str, str] = field(default_factory=dict)


def narrowed() -> Principal:
    grant = Grant("t", "weather", frozenset({"read"}), ("temperature",))
    return Principal(kind="user", id="u", name="u", grants=(grant,))


def test_a_grant_narrowed_to_tools_covers_only_those_tools() -> None:
    p = narrowed()
    assert permissions.can(p, "read", SERVER)
    assert permissions.can(p, "read", SERVER, "temperature")
    assert not permissions.can(p, "read", SERVER, "forecast")
    vis = permissions.tool_visibility(p)
    assert vis.servers == [] and vis.pairs == [("weather", "temperature")]


def test_owner_team_members_read_and_owner_team_admins_write() -> None:
    member: Any = TeamPrincipal(
        kind="user", id="m", name="m", teams=("owners",), team_roles={"owners": "member"}
    )
    admin: Any = TeamPrincipal(
        kind="user", id="a", name="a", teams=("owners",), team_roles={"owners": "admin"}
    )
    stranger = Principal(kind="user", id="s", name="s", teams=("others",))
    assert permissions.can(member, "read", SERVER) and not permissions.can(member, "write", SERVER)
    assert permissions.can(admin, "write", SERVER)
    assert not permissions.can(stranger, "read", SERVER)
