"""Who sees what: service tokens read their org only with read:org, users by role."""

from libs.common.authn import Principal
from services.audit.visibility import admin_orgs, scope_for


def token(*scopes: str) -> Principal:
    """A service token of org o1 (slug acme)."""
    return Principal(kind="service_token", id="t1", name="ci", org_slugs={"acme": "o1"},
                     scopes=scopes, org="o1")  # fmt: skip


def test_a_token_with_read_scope_reads_its_org_and_without_only_itself() -> None:
    assert scope_for(token("read:org:acme")).orgs == ("acme", "o1")
    assert scope_for(token("write:org:acme")).orgs == ()
    assert scope_for(token("write:org:acme")).principals == ("t1",)


def test_admin_orgs_come_from_roles_for_users_and_admin_scope_for_tokens() -> None:
    member = Principal(kind="user", id="u1", name="bob", orgs={"o1": "member"},
                       org_slugs={"acme": "o1"}, scopes=("read:org:acme",))  # fmt: skip
    admin = Principal(kind="user", id="u2", name="al", orgs={"o1": "admin"},
                      org_slugs={"acme": "o1"})  # fmt: skip
    assert admin_orgs(member) == ()
    assert scope_for(member).orgs == ()
    assert admin_orgs(admin) == ("acme", "o1")
    assert admin_orgs(token("read:org:acme")) == ()
    assert admin_orgs(token("admin:org:acme")) == ("acme", "o1")
