"""Who may read and write a server and its tools (pure logic on principals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libs.common.authn import Grant, Principal
from services.registry import permissions

SERVER = {"id": "s1", "name": "weather", "org": "o1", "owner_team": "owners", "shared_with": []}


@dataclass(frozen=True)
class TeamPrincipal(Principal):
    """A principal whose credential carries team roles (as auth may issue them)."""

    team_roles: dict[str, str] = field(default_factory=dict)


def narrowed() -> Principal:
    grant = Grant("t", "weather", frozenset({"read"}), ("temperature",), "s1", "o1")
    return Principal(kind="user", id="u", name="u", grants=(grant,))


def test_a_grant_narrowed_to_tools_covers_only_those_tools() -> None:
    p = narrowed()
    assert permissions.can(p, "read", SERVER)
    assert permissions.can(p, "read", SERVER, "temperature")
    assert not permissions.can(p, "read", SERVER, "forecast")
    assert not permissions.reads_whole(p, SERVER)
    vis = permissions.visibility(p)
    assert vis.whole_servers == []
    assert list(zip(vis.tool_servers, vis.tool_orgs, vis.tool_names, strict=True)) == [
        ("s1", "o1", "temperature")
    ]


def test_owner_team_members_read_and_owner_team_admins_write() -> None:
    teams = {"teams": ("owners",), "team_orgs": (("o1", "owners"),)}
    member: Any = TeamPrincipal(
        kind="user", id="m", name="m", team_roles={"owners": "member"}, **teams
    )
    admin: Any = TeamPrincipal(
        kind="user", id="a", name="a", team_roles={"owners": "admin"}, **teams
    )
    stranger = Principal(kind="user", id="s", name="s", teams=("others",))
    assert permissions.can(member, "read", SERVER) and not permissions.can(member, "write", SERVER)
    assert permissions.can(admin, "write", SERVER)
    assert not permissions.can(stranger, "read", SERVER)


def test_a_namesake_of_the_owner_team_in_another_org_reads_nothing() -> None:
    namesake = Principal(
        kind="user", id="n", name="n", teams=("owners",), team_orgs=(("o2", "owners"),)
    )
    assert not permissions.can(namesake, "read", SERVER)


def test_an_org_admin_reaches_only_the_servers_of_their_own_org() -> None:
    admin = Principal(kind="user", id="a", name="a", orgs={"o2": "admin"})
    assert not permissions.can(admin, "read", SERVER)
    by_slug = {**SERVER, "org": "acme"}
    slugged = Principal(
        kind="user", id="b", name="b", orgs={"o1": "admin"}, org_slugs={"acme": "o1"}
    )
    assert permissions.can(slugged, "write", by_slug)


def test_a_shared_server_is_read_by_the_admins_it_is_shared_with_but_not_changed() -> None:
    shared = {**SERVER, "shared_with": ["o2"]}
    admin = Principal(kind="user", id="a", name="a", orgs={"o2": "admin"})
    assert permissions.can(admin, "read", shared)
    assert not permissions.can(admin, "write", shared)
    assert not permissions.inspects(admin, shared)
    writer = Principal(
        kind="user",
        id="w",
        name="w",
        grants=(Grant("t", "weather", frozenset({"write"}), None, "s1", "o2"),),
    )
    assert permissions.can(writer, "read", shared)
    assert not permissions.can(writer, "write", shared)


def test_only_the_owning_orgs_admins_may_carry_secrets_to_a_new_destination() -> None:
    writer = Principal(
        kind="user",
        id="w",
        name="w",
        orgs={"o1": "member"},
        grants=(Grant("t", "weather", frozenset({"write"}), None, "s1", "o1"),),
    )
    assert permissions.can(writer, "write", SERVER)
    assert not permissions.holds_secrets(writer, SERVER)
    assert permissions.holds_secrets(Principal("user", "a", "a", orgs={"o1": "admin"}), SERVER)
