"""Per-team concurrency caps (services/gateway/team_limits.py)."""

import pytest

from libs.common.authn import Grant, Principal, ServerRef
from services.gateway.jsonrpc import RATE_LIMITED, RpcFault
from services.gateway.team_limits import TeamLimits, parse_overrides, team_of


def test_a_team_holds_at_most_its_cap_and_a_slot_frees_when_the_call_ends() -> None:
    limits = TeamLimits(2, {})
    with limits.slot("a"), limits.slot("a"):
        with pytest.raises(RpcFault) as exc, limits.slot("a"):
            pass
        with limits.slot("b"):
            assert limits.running == {"a": 2, "b": 1}
    assert exc.value.code == RATE_LIMITED and exc.value.data["limit"] == 2
    assert limits.running == {}
    with limits.slot("a"):
        assert limits.running == {"a": 1}


def test_a_failing_call_gives_its_slot_back() -> None:
    limits = TeamLimits(1, {})
    with pytest.raises(ValueError), limits.slot("a"):
        raise ValueError
    assert limits.running == {}


def test_overrides_set_single_teams_and_zero_means_no_cap() -> None:
    limits = TeamLimits(0, parse_overrides(("a=1", " b = 0 ")))
    assert limits.active and limits.cap("a") == 1 and limits.cap("b") == 0 and limits.cap("c") == 0
    with limits.slot("b"), limits.slot("b"), limits.slot(None):
        assert limits.running == {}
    assert not TeamLimits(0, {"x": 0}).active
    with pytest.raises(ValueError):
        parse_overrides(("a",))


def test_a_call_counts_against_the_first_team_whose_grant_covers_it() -> None:
    calc = ServerRef("srv-id", "calc", org="o1")
    grants = (
        Grant("zeta", "calc", frozenset({"read", "execute"}), server_id="srv-id", org="o1"),
        Grant("alpha", "calc", frozenset({"read"}), server_id="srv-id", org="o1"),
        Grant("beta", "calc", frozenset({"execute"}), ("add",), server_id="srv-id", org="o1"),
        # a team of another org holding the same server id counts for nothing
        Grant("aaa", "calc", frozenset({"execute"}), server_id="srv-id", org="o2"),
    )
    who = Principal(kind="user", id="u", name="u", grants=grants)
    assert team_of(who, calc, "add") == "beta"
    assert team_of(who, calc, "sub") == "zeta"
    assert team_of(who, ServerRef("other-id", "other", org="o1"), "add") is None
