"""Plan limits: one definition, unknown plans get the free plan's, admins' overrides."""

import pytest

from libs.common import plans
from libs.common.errors import PlanLimit


def test_an_unknown_or_missing_plan_has_the_free_plans_limits() -> None:
    assert plans.limits_for("platinum") == plans.PLANS["free"]
    assert plans.limits_for(None) == plans.PLANS["free"]


def test_the_plans_grow_and_enterprise_is_unlimited() -> None:
    order = [plans.PLANS[p] for p in ("free", "pro", "team")]
    for smaller, bigger in zip(order, order[1:], strict=False):
        assert smaller.seats < bigger.seats  # type: ignore[operator]
        assert smaller.max_private_mcps < bigger.max_private_mcps  # type: ignore[operator]
        assert smaller.scans_per_month < bigger.scans_per_month  # type: ignore[operator]
    assert plans.limits_for("enterprise") == plans.PlanLimits(None, None, None)


def test_overrides_change_the_named_limits_only_and_may_define_a_plan() -> None:
    overrides = {"pro": {"seats": 42}, "startup": {"seats": 7, "max_private_mcps": None}}
    pro = plans.limits_for("pro", overrides)
    assert pro.seats == 42 and pro.scans_per_month == plans.PLANS["pro"].scans_per_month
    startup = plans.limits_for("startup", overrides)
    assert (startup.seats, startup.max_private_mcps) == (7, None)
    assert startup.scans_per_month == plans.PLANS["free"].scans_per_month


@pytest.mark.parametrize(
    "value",
    [[], {"pro": 3}, {"pro": {"seats": -1}}, {"pro": {"seats": True}}, {"pro": {"x": 1}}],
)
def test_malformed_overrides_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        plans.check_overrides(value)


def test_room_runs_out_at_the_limit_and_never_when_unlimited() -> None:
    free = plans.PLANS["free"]
    plans.require_room("free", free, "seats", free.seats - 1)  # type: ignore[operator]
    with pytest.raises(PlanLimit) as caught:
        plans.require_room("free", free, "seats", free.seats)  # type: ignore[arg-type]
    assert caught.value.status == 402 and caught.value.details["limit"] == free.seats
    plans.require_room("enterprise", plans.PLANS["enterprise"], "seats", 10**6)
