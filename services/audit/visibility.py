"""Who may see which records: platform admins all, org admins their orgs, members their own."""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.authn import Principal

ADMIN_ROLES = ("admin", "owner")


@dataclass(frozen=True)
class Scope:
    """The rows a principal may read: everything, or rows of `orgs`, or rows about `principals`."""

    everything: bool = False
    orgs: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()

    def allows(self, org: str | None, principal: str | None) -> bool:
        """True when a row with this org and principal (actor) is visible."""
        if self.everything:
            return True
        if org is not None and org in self.orgs:
            return True
        return principal is not None and principal in self.principals


def scope_for(principal: Principal) -> Scope:
    """The scope of `principal` (orgs by id and by slug, since events may carry either)."""
    if principal.is_platform_admin:
        return Scope(everything=True)
    own = {p for p in (principal.id, principal.user_id) if p}
    if principal.kind == "service_token":
        return Scope(orgs=_token_orgs(principal, "read"), principals=tuple(sorted(own)))
    return Scope(orgs=admin_orgs(principal), principals=tuple(sorted(own)))


def admin_orgs(principal: Principal) -> tuple[str, ...]:
    """Orgs (ids and slugs) the principal administers: admin/owner role, or `admin:org:` scope."""
    if principal.kind == "service_token":
        return _token_orgs(principal, "admin")
    ids = {org for org, role in principal.orgs.items() if role in ADMIN_ROLES}
    slugs = {slug for slug, org in principal.org_slugs.items() if org in ids}
    return tuple(sorted(ids | slugs))


def _token_orgs(principal: Principal, verb: str) -> tuple[str, ...]:
    """A service token's org (id and slug) when it carries `<verb>:org:<slug>`."""
    found = {
        ref
        for slug, org in principal.org_slugs.items()
        if principal.has_scope(f"{verb}:org:{slug}")
        for ref in (slug, org)
    }
    return tuple(sorted(found))


def org_id(principal: Principal, ref: str) -> str:
    """An org reference (id or slug) as the org id the principal knows it by."""
    return principal.org_slugs.get(ref, ref)


def org_refs(principal: Principal, org: str) -> tuple[str, ...]:
    """The id and every slug of `org`, for matching rows that carry either."""
    return (org, *sorted(s for s, o in principal.org_slugs.items() if o == org))
