"""The one access rule on servers (libs/common/tenancy.py): orgs, owner teams, grants, shares."""

from __future__ import annotations

from libs.common import tenancy
from libs.common.authn import Grant, Principal, ServerRef

WIKI = ServerRef("s1", "wiki", org="o1", owner_team="docs")
LENT = ServerRef("s1", "wiki", org="o1", shared_with=frozenset({"o2"}))


def grant(org: str, perms: set[str], tools: tuple[str, ...] | None = None) -> Grant:
    """A grant on s1 held by a team of `org`."""
    return Grant("t", "wiki", frozenset(perms), tools, "s1", org)


def test_an_admin_of_the_owning_org_may_everything_and_of_another_org_nothing() -> None:
    mine = Principal("user", "a", "a", orgs={"o1": "admin"})
    theirs = Principal("user", "b", "b", orgs={"o2": "owner"})
    assert tenancy.may(mine, "write", WIKI)
    assert not tenancy.may(theirs, "read", WIKI)


def test_an_org_named_by_its_slug_is_the_same_org() -> None:
    by_slug = ServerRef("s1", "wiki", org="acme")
    admin = Principal("user", "a", "a", orgs={"o1": "admin"}, org_slugs={"acme": "o1"})
    assert tenancy.may(admin, "write", by_slug)


def test_the_owner_team_reads_only_when_it_is_a_team_of_the_servers_org() -> None:
    member = Principal("user", "m", "m", teams=("docs",), team_orgs=(("o1", "docs"),))
    namesake = Principal("user", "n", "n", teams=("docs",), team_orgs=(("o9", "docs"),))
    assert tenancy.may(member, "read", WIKI) and not tenancy.may(member, "write", WIKI)
    assert not tenancy.may(namesake, "read", WIKI)


def test_a_share_lends_reading_to_the_borrowers_admins_and_use_to_their_grants() -> None:
    admin = Principal("user", "a", "a", orgs={"o2": "admin"})
    assert tenancy.may(admin, "read", LENT)
    assert not tenancy.may(admin, "execute", LENT)
    assert not tenancy.may(admin, "read", LENT, via_share=False)
    user = Principal("user", "u", "u", grants=(grant("o2", {"execute", "write"}),))
    assert tenancy.may(user, "execute", LENT)
    assert not tenancy.may(user, "write", LENT)
    assert not tenancy.may(user, "read", LENT, via_share=False)
    unlent = ServerRef("s1", "wiki", org="o1")
    assert not tenancy.may(user, "read", unlent)


def test_a_grant_narrowed_to_tools_does_not_read_the_whole_server() -> None:
    narrow = Principal("user", "u", "u", grants=(grant("o1", {"read"}, ("search",)),))
    whole = Principal("user", "w", "w", grants=(grant("o1", {"read"}),))
    assert tenancy.may(narrow, "read", WIKI, "search")
    assert not tenancy.may(narrow, "read", WIKI, "edit")
    assert not tenancy.reads_whole(narrow, WIKI)
    assert tenancy.reads_whole(whole, WIKI)
    both = Principal(
        "user", "b", "b", orgs={"o1": "admin"}, grants=(grant("o1", {"read"}, ("search",)),)
    )
    assert tenancy.reads_whole(both, WIKI)


def test_a_platform_server_is_only_the_platform_admins_and_its_borrowers() -> None:
    platform = ServerRef("s1", "wiki", org=None)
    admin = Principal("user", "a", "a", orgs={"o1": "owner"})
    root = Principal("user", "r", "r", platform_role="platform_admin")
    assert not tenancy.may(admin, "read", platform)
    assert tenancy.may(root, "write", platform)
    lent = ServerRef("s1", "wiki", org=None, shared_with=frozenset({"o1"}))
    assert tenancy.may(admin, "read", lent) and not tenancy.may(admin, "write", lent)
