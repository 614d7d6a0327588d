"""Principal checks, grants, scopes and CSRF — the verification every service uses."""

import pytest
from starlette.requests import Request

from libs.common.authn import (
    CSRF_COOKIE,
    HOST_PREFIX,
    SESSION_COOKIE,
    Grant,
    Principal,
    Verifier,
    canonical_resource,
    check_csrf,
    credential_from,
    require_grant,
    require_org_role,
    require_scope,
)
from libs.common.errors import Forbidden

GRANT = Grant("eng", "github", frozenset({"execute"}), ("search",))


def request(method: str = "GET", headers: dict[str, str] | None = None) -> Request:
    """A bare request with headers."""
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": method, "headers": raw, "path": "/"})


def test_a_grant_covers_its_tools_and_implies_read() -> None:
    assert GRANT.covers("execute", "github", "search")
    assert GRANT.covers("read", "github", None)
    assert not GRANT.covers("execute", "github", "delete")
    assert not GRANT.covers("write", "github", None)
    assert not GRANT.covers("execute", "jira", None)


def test_principals_round_trip_through_their_json_form() -> None:
    p = Principal("user", "u1", "ann", user_id="u1", orgs={"o1": "admin"}, grants=(GRANT,))
    assert Principal.from_dict(p.to_dict()) == p


def test_org_roles_rank_and_platform_admins_pass_everything() -> None:
    member = Principal("user", "u1", "ann", orgs={"o1": "member"})
    require_org_role(member, "o1", "viewer")
    with pytest.raises(Forbidden):
        require_org_role(member, "o1", "admin")
    with pytest.raises(Forbidden):
        require_org_role(member, "o2", "viewer")
    admin = Principal("user", "a", "root", platform_role="platform_admin")
    require_org_role(admin, "o9", "owner")
    require_scope(admin, "admin:org:x")
    require_grant(admin, "write", "anything")


def test_token_scopes_match_exactly_or_by_wildcard() -> None:
    token = Principal("service_token", "t1", "ci", scopes=("ci:org:acme", "read:org:*"))
    require_scope(token, "ci:org:acme")
    require_scope(token, "read:org:other")
    with pytest.raises(Forbidden):
        require_scope(token, "admin:org:acme")
    with pytest.raises(Forbidden):
        require_scope(token, "ci:org:other")


def insecure(req: Request) -> Request:
    """The request as a service with SWITCHBOARD_COOKIE_SECURE=false sees it."""
    req.state.verifier = Verifier(bus=None, cookie_secure=False)  # type: ignore[arg-type]
    return req


def test_credentials_come_from_bearer_then_api_key_then_cookie() -> None:
    assert credential_from(request(headers={"Authorization": "Bearer abc"})) == ("abc", False)
    assert credential_from(request(headers={"X-API-Key": "sbk_x"})) == ("sbk_x", False)
    cookie = {"Cookie": f"{HOST_PREFIX}{SESSION_COOKIE}=sbs_y"}
    assert credential_from(request(headers=cookie)) == ("sbs_y", True)
    assert credential_from(request()) == (None, False)


def test_only_host_prefixed_cookies_count_unless_cookies_are_not_secure() -> None:
    plain = {"Cookie": f"{SESSION_COOKIE}=sbs_y"}
    assert credential_from(request(headers=plain)) == (None, False)
    assert credential_from(insecure(request(headers=plain))) == ("sbs_y", True)
    prefixed = {"Cookie": f"{HOST_PREFIX}{SESSION_COOKIE}=sbs_y"}
    assert credential_from(insecure(request(headers=prefixed))) == (None, False)
    with pytest.raises(Forbidden):  # a tossed plain CSRF cookie is no echo in secure mode
        check_csrf(request("POST", {"Cookie": f"{CSRF_COOKIE}=abc", "X-CSRF-Token": "abc"}))


def test_cookie_state_changes_need_the_csrf_echo() -> None:
    csrf = HOST_PREFIX + CSRF_COOKIE
    check_csrf(request("GET"))
    with pytest.raises(Forbidden):
        check_csrf(request("POST", {"Cookie": f"{csrf}=abc"}))
    with pytest.raises(Forbidden):
        check_csrf(request("POST", {"Cookie": f"{csrf}=abc", "X-CSRF-Token": "abd"}))
    check_csrf(request("POST", {"Cookie": f"{csrf}=abc", "X-CSRF-Token": "abc"}))
    check_csrf(insecure(request("POST", {"Cookie": f"{CSRF_COOKIE}=a", "X-CSRF-Token": "a"})))


def test_canonical_resources_ignore_case_of_scheme_and_host_trailing_slash_and_fragment() -> None:
    assert canonical_resource("HTTPS://Sb.Example.COM/mcp/#x") == "https://sb.example.com/mcp"
    assert canonical_resource("https://sb.example.com/MCP") == "https://sb.example.com/MCP"
    assert canonical_resource("https://sb.example.com:443/mcp") == "https://sb.example.com/mcp"
    assert canonical_resource("http://127.0.0.1:80/mcp") == "http://127.0.0.1/mcp"
    assert canonical_resource("http://[::1]:8080/mcp") == "http://[::1]:8080/mcp"
    assert (
        canonical_resource("https://sb.example.com:8443/mcp") == "https://sb.example.com:8443/mcp"
    )


def test_the_verifier_accepts_switchboard_and_configured_audiences_exactly() -> None:
    plain = Verifier(bus=None)  # type: ignore[arg-type]
    assert plain.issuer_for("switchboard") == "switchboard-auth"
    assert not plain.audience_ok("https://sb.example.com/mcp")
    gateway = Verifier(
        bus=None, audiences={"https://sb.example.com/mcp/": "https://sb.example.com"}
    )  # type: ignore[arg-type]
    assert gateway.issuer_for("HTTPS://sb.example.com:443/mcp") == "https://sb.example.com"
    assert gateway.audience_ok(["other", "https://sb.example.com/mcp"])
    assert gateway.audience_ok("switchboard")
    assert not gateway.audience_ok("https://sb.example.com/mcp/team-a")  # no prefix matching
    assert not gateway.audience_ok("https://sb.example.com/mcp/../api")
    assert not gateway.audience_ok("https://sb.example.com/mcpx")
    assert not gateway.audience_ok("https://evil.example/mcp")
    assert not gateway.audience_ok(None)
    assert not gateway.audience_ok([1, 2])
