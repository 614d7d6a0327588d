"""Signed webhooks: verified before anything is recorded, handled once, pushes and Stripe plans."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.registry.context import Registry
from tests.support.catalog import empty_catalog, insert_mcp

SECRET = "whsec_test_0123456789"
SETTING = {
    "github": "webhook_github_secret",
    "gitlab": "webhook_gitlab_token",
    "bitbucket": "webhook_bitbucket_secret",
    "stripe": "stripe_webhook_secret",
}
Signer = Callable[[str, bytes, str], dict[str, str]]


@pytest.fixture(autouse=True)
async def no_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without catalog entries and deliveries."""
    await empty_catalog(reg.pool)
    yield


async def configure(api: httpx.AsyncClient, provider: str, secret: str = SECRET) -> None:
    """Store the provider's secret (as a platform admin)."""
    resp = await api.put(f"/api/v1/settings/{SETTING[provider]}", json={"value": secret})
    assert resp.status_code == 200, resp.text


def hub(secret: str, raw: bytes) -> str:
    """`sha256=<hex HMAC>` of the body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def stripe_header(secret: str, raw: bytes, at: int | None = None) -> str:
    """A Stripe-Signature header (with a second, wrong v1 as during a secret roll)."""
    t = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={t},v1={'0' * 64},v1={sig}"


SIGNED: dict[str, Signer] = {
    "github": lambda s, raw, d: {
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": d, "X-Hub-Signature-256": hub(s, raw)
    },
    "gitlab": lambda s, raw, d: {
        "X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": d, "X-Gitlab-Token": s
    },
    "bitbucket": lambda s, raw, d: {
        "X-Event-Key": "repo:push", "X-Request-UUID": d, "X-Hub-Signature": hub(s, raw)
    },
    "stripe": lambda s, raw, d: {"Stripe-Signature": stripe_header(s, raw)},
}  # fmt: skip
SIGNATURE_HEADER = {
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "bitbucket": "X-Hub-Signature",
    "stripe": "Stripe-Signature",
}


def body_of(provider: str, delivery: str) -> bytes:
    """A delivery that asks for nothing to change (a push to a repository nobody catalogued)."""
    doc: dict[str, Any] = {
        "github": {"zen": "Design for failure.", "hook_id": 1},
        "gitlab": {
            "object_kind": "push",
            "checkout_sha": "a" * 40,
            "project": {"git_http_url": "https://gitlab.example/nobody/nothing.git"},
        },
        "bitbucket": {
            "repository": {"full_name": "nobody/nothing"},
            "push": {"changes": [{"new": {"target": {"hash": "b" * 40}}}]},
        },
        "stripe": {"id": delivery, "type": "invoice.paid", "data": {"object": {}}},
    }[provider]
    return json.dumps(doc).encode()


async def deliveries(reg: Registry) -> list[Any]:
    """Every recorded delivery."""
    async with reg.pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM registry.webhook_deliveries")


@pytest.mark.parametrize("provider", list(SETTING))
async def test_a_signed_delivery_is_handled_once_and_its_redelivery_is_a_duplicate(
    api: httpx.AsyncClient, reg: Registry, provider: str
) -> None:
    await configure(api, provider)
    delivery = f"evt_{uuid.uuid4().hex}"
    raw = body_of(provider, delivery)
    url = f"/api/v1/webhooks/{provider}"
    resp = await api.post(url, content=raw, headers=SIGNED[provider](SECRET, raw, delivery))
    assert resp.status_code == 200, resp.text
    assert resp.json()["duplicate"] is False and resp.json()["delivery_id"] == delivery
    first = await deliveries(reg)
    assert [(r["provider"], r["delivery_id"]) for r in first] == [(provider, delivery)]
    resp = await api.post(url, content=raw, headers=SIGNED[provider](SECRET, raw, delivery))
    assert resp.status_code == 200 and resp.json()["duplicate"] is True
    assert [dict(r) for r in await deliveries(reg)] == [dict(r) for r in first]


@pytest.mark.parametrize("provider", list(SETTING))
async def test_a_bad_or_missing_signature_is_refused_and_nothing_is_recorded(
    api: httpx.AsyncClient, reg: Registry, provider: str
) -> None:
    await configure(api, provider)
    delivery = f"evt_{uuid.uuid4().hex}"
    raw = body_of(provider, delivery)
    url = f"/api/v1/webhooks/{provider}"
    wrong = SIGNED[provider]("not-the-secret", raw, delivery)
    missing = {
        k: v for k, v in SIGNED[provider](SECRET, raw, delivery).items()
        if k != SIGNATURE_HEADER[provider]
    }  # fmt: skip
    tampered = SIGNED[provider](SECRET, raw, delivery)
    for headers, content in ((wrong, raw), (missing, raw), (tampered, raw + b" ")):
        if provider == "gitlab" and content != raw:
            continue  # GitLab signs nothing: its token is the whole proof
        resp = await api.post(url, content=content, headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await deliveries(reg) == []


async def test_a_stripe_signature_older_than_the_tolerance_is_refused(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    await configure(api, "stripe")
    raw = body_of("stripe", "evt_old")
    # well outside the 300 s tolerance: a second's margin was eaten by a loaded machine's delay
    for at in (int(time.time()) - 330, int(time.time()) + 330):
        headers = {"Stripe-Signature": stripe_header(SECRET, raw, at=at)}
        resp = await api.post("/api/v1/webhooks/stripe", content=raw, headers=headers)
        assert resp.status_code == 401
    assert await deliveries(reg) == []


async def test_an_unconfigured_provider_has_no_webhook(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    raw = body_of("github", "d1")
    resp = await api.post(
        "/api/v1/webhooks/github", content=raw, headers=SIGNED["github"](SECRET, raw, "d1")
    )
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"
    assert (await api.post("/api/v1/webhooks/nowhere", content=raw)).status_code == 404
    assert await deliveries(reg) == []
    await configure(api, "github")
    settings = (await api.get("/api/v1/settings")).json()["settings"]
    assert settings["webhook_github_secret"] == "********"  # never returned


def stripe_event(kind: str, org: str, **obj: Any) -> bytes:
    """A Stripe event about a subscription of `org`."""
    body = {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "data": {"object": obj}}
    body["data"]["object"].setdefault("metadata", {"org": org})
    return json.dumps(body).encode()


async def test_stripe_subscription_events_set_the_orgs_plan_in_auth(
    api: httpx.AsyncClient, auth: Any
) -> None:
    await configure(api, "stripe")
    org = await auth.create_org()

    async def send(raw: bytes) -> dict[str, Any]:
        headers = {"Stripe-Signature": stripe_header(SECRET, raw)}
        resp = await api.post("/api/v1/webhooks/stripe", content=raw, headers=headers)
        assert resp.status_code == 200, resp.text
        return resp.json()

    priced = {"data": [{"price": {"lookup_key": "pro"}}]}
    done = await send(stripe_event("customer.subscription.created", org["slug"], items=priced))
    assert done["plan"] == "pro" and done["org"] == org["id"]
    assert (await auth.call("GET", f"/api/v1/orgs/{org['id']}"))["plan"] == "pro"
    meta = {"org": org["id"], "plan": "team"}
    await send(stripe_event("checkout.session.completed", org["id"], metadata=meta))
    assert (await auth.call("GET", f"/api/v1/orgs/{org['id']}"))["plan"] == "team"
    await send(stripe_event("customer.subscription.deleted", org["slug"]))
    assert (await auth.call("GET", f"/api/v1/orgs/{org['id']}"))["plan"] == "free"
    ignored = await send(stripe_event("customer.subscription.updated", "no-such-org-x"))
    assert "ignored" in ignored


def git_repo(where: Path) -> tuple[Path, str]:
    """A local repository with one commit, and the commit's sha."""
    who = {"NAME": "t", "EMAIL": "t@example.com"}
    env = {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()}
    env["HOME"] = str(where)
    repo = where / "tool"
    repo.mkdir()
    (repo / "README.md").write_text("# tool\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "first"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, sha


async def test_a_github_push_adds_a_version_to_the_mcps_of_that_repository(
    api: httpx.AsyncClient, reg: Registry, tmp_path: Path
) -> None:
    await configure(api, "github")
    repo, sha = git_repo(tmp_path)
    async with reg.pool.acquire() as conn:
        mcp = await insert_mcp(conn, "tool", None, "public", repo_url=f"file://{repo}")
        await insert_mcp(conn, "other", None, "public", repo_url="https://github.com/x/other")
    body = {"ref": "refs/heads/main", "after": sha, "repository": {"clone_url": f"file://{repo}"}}
    raw = json.dumps(body).encode()
    headers = {**SIGNED["github"](SECRET, raw, "push-1"), "X-GitHub-Event": "push"}
    resp = await api.post("/api/v1/webhooks/github", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["mcps"] == ["tool"]
    assert resp.json()["errors"] == [], resp.text
    async with reg.pool.acquire() as conn:
        rows = await conn.fetch("SELECT mcp_id, commit_sha, git_ref FROM registry.mcp_versions")
    assert [(r["mcp_id"], sha in (r["commit_sha"], r["git_ref"])) for r in rows] == [(mcp, True)]
