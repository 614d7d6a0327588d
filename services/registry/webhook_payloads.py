"""Webhook signatures and payloads, pure: who signed a delivery and what it asks for.

GitHub signs the raw body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`), Bitbucket the
same in `X-Hub-Signature`, GitLab sends its token as is (`X-Gitlab-Token`), Stripe signs
"<t>.<body>" (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`) and its timestamp must be
recent. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from libs.common.errors import Unauthenticated

ZERO_SHA = re.compile(r"^0+$")
SHA_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")
STRIPE_PLAN_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "checkout.session.completed",
    }
)
ORG_REF_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")  # an org id or slug
PLAN_RE = re.compile(r"^[a-z0-9_\-]{1,32}$")  # as auth accepts a plan name
# a subscription in these states pays for nothing any more
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})


def _refused(reason: str) -> Unauthenticated:
    """401 for a delivery whose signature does not verify (the reason says which part)."""
    return Unauthenticated("The webhook signature does not verify.", details={"reason": reason})


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two header values (any characters: compared as UTF-8)."""
    return hmac.compare_digest(a.encode(), b.encode())


def _hmac_hex(secret: str, data: bytes) -> str:
    """Hex HMAC-SHA256 of `data` under `secret`."""
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def verify_hub_signature(secret: str, header: str | None, raw: bytes) -> None:
    """`sha256=<hex HMAC of the raw body>` (GitHub, Bitbucket)."""
    if not header:
        raise _refused("missing signature")
    algo, _, given = header.strip().partition("=")
    if algo.lower() != "sha256" or not given:
        raise _refused("not a sha256 signature")
    if not _same(_hmac_hex(secret, raw), given.strip().lower()):
        raise _refused("signature mismatch")


def verify_token(secret: str, header: str | None) -> None:
    """GitLab: the X-Gitlab-Token header equals the configured token."""
    if not header:
        raise _refused("missing token")
    if not _same(secret, header):
        raise _refused("token mismatch")


def verify_stripe(
    secret: str, header: str | None, raw: bytes, now: float, tolerance: float
) -> None:
    """Stripe-Signature: a recent `t` and one `v1` matching HMAC-SHA256 of "t.body"."""
    if not header:
        raise _refused("missing signature")
    stamp: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1" and value:
            signatures.append(value.lower())
    if stamp is None or not re.fullmatch(r"[0-9]{1,12}", stamp) or not signatures:
        raise _refused("malformed signature header")
    if abs(now - int(stamp)) > tolerance:
        raise _refused("timestamp outside the tolerance")
    expected = _hmac_hex(secret, stamp.encode() + b"." + raw)
    # every candidate compared, so the time taken says nothing of which one matched
    matches = [_same(expected, sig) for sig in signatures]
    if not any(matches):
        raise _refused("signature mismatch")


def normalise_repo(url: Any) -> str | None:
    """A repository URL as `host/path` in lower case, whatever its form (None when not one).

    https://github.com/Acme/Tool.git, git@github.com:acme/tool and ssh://git@github.com:22/acme/tool
    all give `github.com/acme/tool`; a file:// URL gives its path."""
    if not isinstance(url, str) or not url.strip():
        return None
    text = url.strip()
    scp = re.match(r"^(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)$", text)
    if scp and "://" not in text:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        host, path = parts.hostname or "", parts.path
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    path = path.rstrip("/")
    if not path:
        return None
    return f"{host.lower()}/{path.lower()}" if host else f"/{path.lower()}"


@dataclass(frozen=True)
class Push:
    """A push: the repository's URLs (every form the payload gives) and the new commits."""

    repo_urls: tuple[str, ...]
    commits: tuple[str, ...]

    @property
    def repos(self) -> frozenset[str]:
        """The repository, normalised."""
        return frozenset(n for u in self.repo_urls if (n := normalise_repo(u)))


def _strings(*values: Any) -> tuple[str, ...]:
    """The non-empty strings among `values`."""
    return tuple(v for v in values if isinstance(v, str) and v)


def _commits(*values: Any) -> tuple[str, ...]:
    """Commit shas among `values`, without deletions (all zeros) and duplicates."""
    out: list[str] = []
    for v in values:
        sha = v.lower() if isinstance(v, str) else ""
        if SHA_RE.match(sha) and not ZERO_SHA.match(sha) and sha not in out:
            out.append(sha)
    return tuple(out)


def _dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else {}."""
    return value if isinstance(value, dict) else {}


def github_push(body: dict[str, Any]) -> Push:
    """A GitHub `push` event (a deleted branch has no commit)."""
    repo = _dict(body.get("repository"))
    urls = _strings(*(repo.get(k) for k in ("clone_url", "ssh_url", "git_url", "html_url", "url")))
    return Push(urls, () if body.get("deleted") else _commits(body.get("after")))


def gitlab_push(body: dict[str, Any]) -> Push:
    """A GitLab `Push Hook` / `Tag Push Hook`."""
    project, repo = _dict(body.get("project")), _dict(body.get("repository"))
    urls = _strings(
        *(project.get(k) for k in ("git_http_url", "git_ssh_url", "web_url", "http_url")),
        *(repo.get(k) for k in ("git_http_url", "git_ssh_url", "homepage", "url")),
    )
    return Push(urls, _commits(body.get("checkout_sha") or body.get("after")))


def bitbucket_push(body: dict[str, Any]) -> Push:
    """A Bitbucket `repo:push`: the new head of every changed branch or tag."""
    repo = _dict(body.get("repository"))
    html = _dict(_dict(repo.get("links")).get("html")).get("href")
    full = repo.get("full_name")
    urls = _strings(html, f"https://bitbucket.org/{full}" if isinstance(full, str) else None)
    changes = _dict(body.get("push")).get("changes")
    heads = [
        _dict(_dict(_dict(change).get("new")).get("target")).get("hash")
        for change in (changes if isinstance(changes, list) else [])
    ]
    return Push(urls, _commits(*heads))


@dataclass(frozen=True)
class PlanChange:
    """What a Stripe event sets: the org (id or slug) and its plan."""

    org: str
    plan: str


def stripe_plan_change(event: Mapping[str, Any]) -> PlanChange | str:
    """The plan change a Stripe event asks for, or why it asks for none."""
    kind = event.get("type")
    if kind not in STRIPE_PLAN_EVENTS:
        return "the event type does not change plans"
    obj = _dict(_dict(event.get("data")).get("object"))
    meta = _dict(obj.get("metadata"))
    org = meta.get("org") or obj.get("client_reference_id")
    if not isinstance(org, str) or not ORG_REF_RE.match(org):
        return "no metadata.org (an org id or slug)"
    if kind == "customer.subscription.deleted" or obj.get("status") in ENDED_STATUSES:
        return PlanChange(org, "free")
    plan = meta.get("plan") or _lookup_key(obj)
    if not isinstance(plan, str) or not PLAN_RE.match(plan.lower()):
        return "no plan name in metadata.plan nor a price lookup_key"
    return PlanChange(org, plan.lower())


def _lookup_key(obj: dict[str, Any]) -> Any:
    """The first price's lookup_key of a subscription (or a session's expanded line items)."""
    for key in ("items", "line_items"):
        data = _dict(obj.get(key)).get("data")
        for item in data if isinstance(data, list) else []:
            price = _dict(_dict(item).get("price"))
            if price.get("lookup_key"):
                return price["lookup_key"]
    return None
