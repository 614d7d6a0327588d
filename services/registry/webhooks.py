"""Signed webhooks: GitHub, GitLab and Bitbucket pushes add catalog versions, Stripe sets plans.

A delivery is verified before anything is read or stored (401 otherwise), recorded once in
webhook_deliveries (a redelivery answers {"duplicate": true} and does nothing), then handled; a
delivery whose handling fails is forgotten again so that the provider's retry is handled. A
provider without its secret configured has no webhook: 404.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import orjson
import structlog

from libs.common import rpc_types
from libs.common.bus import RpcError
from libs.common.errors import ApiError, NotFound, Unavailable, ValidationError
from libs.common.rpc_types import SetPlanRequest
from services.registry import webhook_payloads as payloads
from services.registry.context import Registry
from services.registry.store import webhooks as store

log = structlog.get_logger()
SET_PLAN_TIMEOUT_S = 5.0
# provider → its config key (docs/CATALOG.md, Webhooks)
SECRET_KEYS = {
    "github": "webhook_github_secret",
    "gitlab": "webhook_gitlab_token",
    "bitbucket": "webhook_bitbucket_secret",
    "stripe": "stripe_webhook_secret",
}
PUSH_EVENTS = {
    "github": ("push",),
    "gitlab": ("Push Hook", "Tag Push Hook"),
    "bitbucket": ("repo:push",),
}


async def receive(
    reg: Registry, provider: str, headers: Mapping[str, str], raw: bytes
) -> dict[str, Any]:
    """Verify, record once and handle one delivery; the response body."""
    if provider not in SECRET_KEYS:
        raise NotFound(f"There is no {provider!r} webhook.", details={"provider": provider})
    secret = await _secret(reg, provider)
    _verify(reg, provider, secret, headers, raw)
    body = _json(raw)
    event = _event_name(provider, headers, body)
    delivery_id = _delivery_id(provider, headers, body, raw)
    async with reg.pool.acquire() as conn:
        if not await store.claim_delivery(conn, provider, delivery_id, event):
            return {"ok": True, "duplicate": True, "delivery_id": delivery_id, "event": event}
    try:
        outcome = await _handle(reg, provider, event, body)
    except Exception:
        async with reg.pool.acquire() as conn:
            await store.release_delivery(conn, provider, delivery_id)
        raise
    async with reg.pool.acquire() as conn:
        await store.set_outcome(conn, provider, delivery_id, outcome)
    log.info("webhook_handled", provider=provider, delivery_id=delivery_id, webhook_event=event)
    return {"ok": True, "duplicate": False, "delivery_id": delivery_id, "event": event, **outcome}


async def _secret(reg: Registry, provider: str) -> str:
    """The provider's configured secret; 404 when there is none (no such webhook)."""
    async with reg.pool.acquire() as conn:
        cfg = await reg.config(conn, reveal=True)
    secret = cfg.get(SECRET_KEYS[provider])
    if not isinstance(secret, str) or not secret:
        raise NotFound(
            f"No {provider} webhook is configured.",
            details={"provider": provider, "setting": SECRET_KEYS[provider]},
        )
    return secret


def _verify(
    reg: Registry, provider: str, secret: str, headers: Mapping[str, str], raw: bytes
) -> None:
    """401 unless the delivery carries the provider's valid signature."""
    if provider == "github":
        payloads.verify_hub_signature(secret, headers.get("x-hub-signature-256"), raw)
    elif provider == "bitbucket":
        payloads.verify_hub_signature(secret, headers.get("x-hub-signature"), raw)
    elif provider == "gitlab":
        payloads.verify_token(secret, headers.get("x-gitlab-token"))
    else:
        tolerance = reg.settings.stripe_tolerance_s
        header = headers.get("stripe-signature")
        payloads.verify_stripe(secret, header, raw, time.time(), tolerance)


def _json(raw: bytes) -> dict[str, Any]:
    """The (verified) body as a JSON object; 400 otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError("The webhook body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValidationError("The webhook body must be a JSON object.")
    return body


def _event_name(provider: str, headers: Mapping[str, str], body: dict[str, Any]) -> str:
    """The event's name as the provider gives it."""
    if provider == "github":
        name: Any = headers.get("x-github-event")
    elif provider == "gitlab":
        name = headers.get("x-gitlab-event") or body.get("object_kind")
    elif provider == "bitbucket":
        name = headers.get("x-event-key")
    else:
        name = body.get("type")
    return _clean(name)


def _clean(value: Any) -> str:
    """A provider's string as we store it: at most 200 characters, no NUL (Postgres text)."""
    return value.replace("\x00", "")[:200] if isinstance(value, str) else ""


def _delivery_id(
    provider: str, headers: Mapping[str, str], body: dict[str, Any], raw: bytes
) -> str:
    """The provider's delivery id (the body's hash when it sends none)."""
    given = {
        "github": headers.get("x-github-delivery"),
        "gitlab": headers.get("x-gitlab-event-uuid") or headers.get("idempotency-key"),
        "bitbucket": headers.get("x-request-uuid") or headers.get("x-hook-uuid"),
        "stripe": body.get("id"),
    }[provider]
    if given := _clean(given):
        return given
    return "sha256:" + hashlib.sha256(raw).hexdigest()


async def _handle(reg: Registry, provider: str, event: str, body: dict[str, Any]) -> dict:
    """Do what the delivery asks; what was done, to record and answer."""
    if provider == "stripe":
        return await _set_plan(reg, body)
    if provider == "github" and event == "ping":
        return {"pong": True}
    if event not in PUSH_EVENTS[provider]:
        return {"ignored": f"event {event!r} is not a push"}
    push = {
        "github": payloads.github_push,
        "gitlab": payloads.gitlab_push,
        "bitbucket": payloads.bitbucket_push,
    }[provider](body)
    return await _add_versions(reg, provider, push)


async def _add_versions(reg: Registry, provider: str, push: payloads.Push) -> dict[str, Any]:
    """A version of every catalog entry whose repository was pushed to, per new commit."""
    mcps = await _mcps_of(reg, push)
    versions: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    if mcps and push.commits:
        # the catalog's version intake (services/registry/catalog/versions.py)
        from services.registry.catalog.versions import add_git_version

        for mcp in mcps:
            for sha in push.commits:
                try:
                    added = await add_git_version(reg, mcp, ref=sha, actor=f"webhook:{provider}")
                except ApiError as exc:
                    errors.append({"mcp": mcp["name"], "ref": sha, "error": exc.code})
                    continue
                versions.append({"mcp": mcp["name"], "ref": sha, "version_id": _id_of(added)})
    return {"mcps": [m["name"] for m in mcps], "versions": versions, "errors": errors}


def _id_of(added: Any) -> str | None:
    """The id of the version add_git_version returned."""
    value = added.get("id") if isinstance(added, Mapping) else None
    return str(value) if value is not None else None


async def _mcps_of(reg: Registry, push: payloads.Push) -> list[dict[str, Any]]:
    """The catalog entries whose repo_url is the pushed repository (in any URL form)."""
    repos = push.repos
    found: dict[Any, dict[str, Any]] = {}
    async with reg.pool.acquire() as conn:
        for repo in repos:
            name = repo.rsplit("/", 1)[-1]
            for row in await store.list_mcps_naming(conn, name):
                if payloads.normalise_repo(row["repo_url"]) in repos:
                    found[row["id"]] = dict(row)
    return list(found.values())


async def _set_plan(reg: Registry, body: dict[str, Any]) -> dict[str, Any]:
    """Apply a Stripe subscription or checkout event to the org's plan, through auth."""
    change = payloads.stripe_plan_change(body)
    if isinstance(change, str):
        return {"ignored": change}
    request = SetPlanRequest(change.org, change.plan, actor="webhook:stripe")
    try:
        org = await reg.bus.call(rpc_types.AUTH_SET_PLAN, request, timeout=SET_PLAN_TIMEOUT_S)
    except RpcError as exc:
        if exc.status < 500:
            return {"ignored": f"auth refused: {exc.status}", "org": change.org}
        raise Unavailable("The auth service could not set the plan.") from None
    except ApiError:
        raise Unavailable("The auth service is not reachable to set the plan.") from None
    return {"org": org.id, "plan": org.plan}
