"""Who decides an approval: platform admins, and org admins of its org under `org_admin`."""

from __future__ import annotations

from libs.common.authn import Principal
from services.sandbox.policy import Policy


def may_decide(policy: Policy, principal: Principal, org: str | None) -> bool:
    """True for platform admins; under `approvers: org_admin`, for admins of `org` too."""
    if principal.is_platform_admin:
        return True
    if policy.approvers != "org_admin" or org is None:
        return False
    return principal.has_org_role(principal.org_slugs.get(org, org), "admin")
