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
    admin_ids = {org for org, role in principal.orgs.items() if role in ADMIN_ROLES}
    slugs = {slug for slug, org in principal.org_slugs.items() if org in admin_ids}
    own = {p for p in (principal.id, principal.user_id) if p}
    return Scope(orgs=tuple(sorted(admin_ids | slugs)), principals=tuple(sorted(own)))


def org_id(principal: Principal, ref: str) -> str:
    """An org reference (id or slug) as the org id the principal knows it by."""
    return principal.org_slugs.get(ref, ref)


def org_refs(principal: Principal, org: str) -> tuple[str, ...]:
    """The id and every slug of `org`, for matching rows that carry either."""
    return (org, *sorted(s for s, o in principal.org_slugs.items() if o == org))
