"""Plan limits, defined once: what free, pro, team and enterprise orgs may have (docs/AUTH.md).

Auth enforces seats; the registry enforces private MCPs and scans per month, and lets a platform
admin override the numbers with its `plan_limits` config key. None means unlimited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libs.common.errors import PlanLimit

DEFAULT_PLAN = "free"
RESOURCES = ("max_private_mcps", "scans_per_month", "seats")


@dataclass(frozen=True)
class PlanLimits:
    """The limits of one plan; None: unlimited."""

    max_private_mcps: int | None
    scans_per_month: int | None
    seats: int | None


PLANS: dict[str, PlanLimits] = {
    "free": PlanLimits(max_private_mcps=1, scans_per_month=10, seats=5),
    "pro": PlanLimits(max_private_mcps=10, scans_per_month=200, seats=10),
    "team": PlanLimits(max_private_mcps=50, scans_per_month=1000, seats=50),
    "enterprise": PlanLimits(max_private_mcps=None, scans_per_month=None, seats=None),
}


def limits_for(plan: str | None, overrides: Mapping[str, Any] | None = None) -> PlanLimits:
    """The limits of `plan` (an unknown or missing plan has the free plan's).

    `overrides` maps plan names to some of their limits ({"pro": {"seats": 20}}); a plan named
    there only is based on the free plan."""
    overrides = overrides or {}
    name = plan if plan is not None and (plan in PLANS or plan in overrides) else DEFAULT_PLAN
    base = PLANS.get(name, PLANS[DEFAULT_PLAN])
    changes = dict(overrides.get(name) or {})
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if k in RESOURCES})


def check_overrides(value: Any) -> dict[str, dict[str, int | None]]:
    """Validate a `plan_limits` override: {plan: {limit name: int ≥ 0 or null}}; ValueError."""
    if not isinstance(value, dict):
        raise ValueError("must be an object of plan names to limits")
    out: dict[str, dict[str, int | None]] = {}
    for plan, limits in value.items():
        if not isinstance(limits, dict):
            raise ValueError(f"{plan}: must be an object of limits")
        for key, number in limits.items():
            if key not in RESOURCES:
                raise ValueError(f"{plan}.{key}: must be one of {', '.join(RESOURCES)}")
            if number is not None and (
                isinstance(number, bool) or not isinstance(number, int) or number < 0
            ):
                raise ValueError(f"{plan}.{key}: must be an integer ≥ 0 or null")
        out[str(plan)] = dict(limits)
    return out


def require_room(plan: str | None, limits: PlanLimits, resource: str, used: int) -> None:
    """402 PLAN_LIMIT when `used` already reaches the plan's limit on `resource`."""
    limit = getattr(limits, resource)
    if limit is not None and used >= limit:
        raise PlanLimit(
            f"The {plan or DEFAULT_PLAN} plan allows {limit} {resource.replace('_', ' ')}.",
            details={"limit": limit, "used": used, "plan": plan or DEFAULT_PLAN,
                     "resource": resource},
        )  # fmt: skip
