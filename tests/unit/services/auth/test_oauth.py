"""PKCE, redirect URI rules, resources and scopes of the OAuth server; token grant bounds."""

import base64
import hashlib

import pytest

from libs.common.authn import Grant
from services.auth.credential_schemas import redirect_uri_problem
from services.auth.grants import as_grants, bind, not_owned, owned
from services.auth.oauth import granted_scope, pkce_challenge, resource_for
from services.auth.settings import AuthSettings

SETTINGS = AuthSettings.from_env({"SWITCHBOARD_PUBLIC_URL": "https://SB.example.com/"})


def test_the_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    digest = hashlib.sha256(verifier.encode()).digest()
    assert pkce_challenge(verifier) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "http://127.0.0.1:33418/",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:8000/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example.com/cb",
        "https://app.example.com/cb#frag",
        "javascript:alert(1)",
        "data:text/html,hi",
        "/relative/cb",
        "https:///nohost",
        "https://a.example.com/ cb",
    ],
)
def test_refused_redirect_uris(uri: str) -> None:
    assert redirect_uri_problem(uri) is not None


def test_the_resource_is_exactly_the_gateways_mcp_url_in_canonical_form() -> None:
    assert SETTINGS.mcp_resource == "https://SB.example.com/mcp"
    assert resource_for(SETTINGS, None) == "https://sb.example.com/mcp"
    assert resource_for(SETTINGS, "https://sb.example.com/mcp/") == "https://sb.example.com/mcp"
    assert resource_for(SETTINGS, "HTTPS://SB.example.com:443/mcp") == "https://sb.example.com/mcp"
    assert resource_for(SETTINGS, "https://sb.example.com/mcp/team-a") is None  # no prefixes
    assert resource_for(SETTINGS, "https://sb.example.com/mcp/../api") is None
    assert resource_for(SETTINGS, "https://sb.example.com/mcp#frag") is None
    assert resource_for(SETTINGS, "https://sb.example.com/mcpx") is None
    assert resource_for(SETTINGS, "https://evil.example/mcp") is None


def test_only_known_scopes_are_granted() -> None:
    assert granted_scope(None) == "mcp"
    assert granted_scope("mcp admin:everything") == "mcp"


def test_a_token_grant_must_be_covered_by_the_orgs_grants() -> None:
    org = [
        Grant("eng", "github", frozenset({"execute"}), ("search", "read_file"), "s-gh", "o1"),
        Grant("ops", "jira", frozenset({"write"}), None, "s-jira", "o1"),
    ]
    asked = as_grants(
        [
            {"server": "github", "permissions": ["execute"], "tools": ["search"]},
            {"server": "s-jira", "permissions": ["read", "write"], "tools": None},
        ],
        team="",
        org="o1",
    )
    ask, unknown = bind(asked, org)
    assert unknown == []
    assert [g.server_id for g in ask] == ["s-gh", "s-jira"]
    assert all(owned(g, org) for g in ask)
    too_much, unknown = bind(
        as_grants(
            [
                {"server": "github", "permissions": ["execute"], "tools": None},
                {"server": "github", "permissions": ["write"], "tools": ["search"]},
                {"server": "gitlab", "permissions": ["read"], "tools": None},
            ],
            org="o1",
        ),
        org,
    )
    assert unknown == ["gitlab"]
    assert not_owned(too_much, org) == ["github", "github"]
