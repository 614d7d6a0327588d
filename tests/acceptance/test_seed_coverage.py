"""Every endpoint of the MCP Hub certification seed has a handler behind nginx.

The seed's 71 endpoints (docs/CONTRACTS.md, "MCP Hub certification API"), sent through nginx
with the platform admin's credential and made-up ids: none may fall through nginx or a service's
router (`No route …` 404, 405) or fail (5xx). Each capability's behaviour is tested elsewhere;
this is the map's proof that nothing in it is missing.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.acceptance.rest import Admin

ID = str(uuid.uuid4())
SEED = [
    # public catalog
    ("GET", "/api/v1/mcps"),
    ("GET", "/api/v1/mcps/{id}"),
    ("GET", "/api/v1/mcps/{id}/versions"),
    ("GET", "/api/v1/mcps/{id}/versions/{id}"),
    ("GET", "/api/v1/mcps/{id}/versions/{id}/snapshot/latest"),
    ("GET", "/api/v1/mcps/{id}/versions/{id}/controls"),
    ("GET", "/api/v1/mcps/{id}/versions/{id}/scores"),
    # organizations
    ("POST", "/api/v1/orgs"),
    ("GET", "/api/v1/orgs/{id}"),
    ("POST", "/api/v1/orgs/{id}/users/invite"),
    ("GET", "/api/v1/orgs/{id}/roles"),
    # areas
    ("GET", "/api/v1/orgs/{id}/areas"),
    ("POST", "/api/v1/orgs/{id}/areas"),
    ("GET", "/api/v1/orgs/{id}/areas/{id}"),
    ("PUT", "/api/v1/orgs/{id}/areas/{id}"),
    ("DELETE", "/api/v1/orgs/{id}/areas/{id}"),
    ("GET", "/api/v1/orgs/{id}/areas/{id}/members"),
    ("POST", "/api/v1/orgs/{id}/areas/{id}/members"),
    ("DELETE", "/api/v1/orgs/{id}/areas/{id}/members/{id}"),
    ("PATCH", "/api/v1/orgs/{id}/areas/{id}/members/{id}/role"),
    # policies, CI, service tokens, audit, reports
    ("GET", "/api/v1/orgs/{id}/policies"),
    ("POST", "/api/v1/orgs/{id}/policies"),
    ("POST", "/api/v1/ci/evaluate"),
    ("POST", "/api/v1/orgs/{id}/tokens"),
    ("GET", "/api/v1/orgs/{id}/audit-events"),
    ("POST", "/api/v1/orgs/{id}/reports"),
    ("GET", "/api/v1/orgs/{id}/reports/{id}.pdf"),
    # webhooks
    ("POST", "/api/v1/webhooks/github"),
    ("POST", "/api/v1/webhooks/gitlab"),
    ("POST", "/api/v1/webhooks/bitbucket"),
    ("POST", "/api/v1/webhooks/stripe"),
    # admin: users
    ("GET", "/api/v1/admin/users"),
    ("GET", "/api/v1/admin/users/{id}"),
    ("POST", "/api/v1/admin/users"),
    ("PUT", "/api/v1/admin/users/{id}"),
    ("PATCH", "/api/v1/admin/users/{id}/plan"),
    ("PATCH", "/api/v1/admin/users/{id}/role"),
    ("POST", "/api/v1/admin/users/{id}/suspend"),
    ("POST", "/api/v1/admin/users/{id}/activate"),
    ("DELETE", "/api/v1/admin/users/{id}"),
    ("POST", "/api/v1/admin/users/bulk/suspend"),
    ("POST", "/api/v1/admin/users/bulk/activate"),
    # admin: organizations
    ("GET", "/api/v1/admin/orgs"),
    ("GET", "/api/v1/admin/orgs/{id}"),
    ("POST", "/api/v1/admin/orgs"),
    ("PUT", "/api/v1/admin/orgs/{id}"),
    ("PATCH", "/api/v1/admin/orgs/{id}/plan"),
    ("POST", "/api/v1/admin/orgs/{id}/suspend"),
    ("POST", "/api/v1/admin/orgs/{id}/activate"),
    ("DELETE", "/api/v1/admin/orgs/{id}"),
    # admin: MCPs
    ("GET", "/api/v1/admin/mcps"),
    ("GET", "/api/v1/admin/mcps/{id}"),
    ("POST", "/api/v1/admin/mcps"),
    ("PUT", "/api/v1/admin/mcps/{id}"),
    ("PATCH", "/api/v1/admin/mcps/{id}/category"),
    ("PATCH", "/api/v1/admin/mcps/{id}/tags"),
    ("POST", "/api/v1/admin/mcps/{id}/featured"),
    ("DELETE", "/api/v1/admin/mcps/{id}"),
    # admin: categories and tags
    ("GET", "/api/v1/admin/categories"),
    ("POST", "/api/v1/admin/categories"),
    ("PUT", "/api/v1/admin/categories/{id}"),
    ("DELETE", "/api/v1/admin/categories/{id}"),
    ("GET", "/api/v1/admin/tags"),
    ("POST", "/api/v1/admin/tags"),
    ("PUT", "/api/v1/admin/tags/{id}"),
    ("DELETE", "/api/v1/admin/tags/{id}"),
    # admin: audit
    ("GET", "/api/v1/admin/audit"),
    ("GET", "/api/v1/admin/audit/users/{id}"),
    ("GET", "/api/v1/admin/audit/orgs/{id}"),
    # health (the seed's two names for each probe)
    ("GET", "/healthz"),
    ("GET", "/readyz"),
]
# the other name the seed gives each probe
ALIASES = [("GET", "/health"), ("GET", "/ready")]
UNROUTED = ("No route matches this path.", "No route for this path.")


def test_the_seed_list_has_its_71_endpoints() -> None:
    assert len(SEED) == 71 and len(set(SEED)) == 71


@pytest.mark.parametrize(
    ("method", "path"), SEED + ALIASES, ids=[f"{m} {p}" for m, p in SEED + ALIASES]
)
async def test_each_seed_endpoint_has_a_handler(
    api: httpx.AsyncClient, admin: Admin, method: str, path: str
) -> None:
    url = path.replace("{id}", ID)
    body = None if method in ("GET", "DELETE") else {}
    resp = await api.request(method, url, json=body, headers=admin.headers)
    message = ""
    if resp.headers.get("content-type", "").startswith("application/json"):
        message = (resp.json().get("error") or {}).get("message", "")
    assert resp.status_code < 500, f"{method} {url}: {resp.status_code} {resp.text[:300]}"
    assert resp.status_code != 405, f"{method} {url}: no such method: {resp.text[:300]}"
    assert message not in UNROUTED, f"{method} {url}: no handler: {resp.text[:300]}"
