"""Webhook signatures and payloads: what verifies, what a push and a Stripe event ask for."""

import hashlib
import hmac

import pytest

from libs.common.errors import Unauthenticated
from services.registry import webhook_payloads as wp

RAW = b'{"hello": "world"}'


def hub(secret: str, raw: bytes) -> str:
    """`sha256=<hex HMAC>`."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def stripe(secret: str, t: int, raw: bytes = RAW) -> str:
    """The v1 signature of "t.body"."""
    return hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()


def test_a_hub_signature_verifies_only_for_the_same_secret_and_body() -> None:
    wp.verify_hub_signature("s3cret", hub("s3cret", RAW), RAW)
    wp.verify_hub_signature("s3cret", hub("s3cret", RAW).upper().replace("SHA256", "sha256"), RAW)
    for header, raw in ((hub("other", RAW), RAW), (hub("s3cret", RAW), RAW + b" "),
                        (None, RAW), ("", RAW), ("sha1=abc", RAW), ("sha256=", RAW),
                        ("sha256=\u00e9", RAW)):  # fmt: skip
        with pytest.raises(Unauthenticated):
            wp.verify_hub_signature("s3cret", header, raw)


def test_a_gitlab_token_must_equal_the_secret() -> None:
    wp.verify_token("tok", "tok")
    for header in (None, "", "tok2", "to", "t\u00f6k"):
        with pytest.raises(Unauthenticated):
            wp.verify_token("tok", header)


def test_a_stripe_signature_needs_a_recent_timestamp_and_one_matching_v1() -> None:
    now = 1_800_000_000
    good = stripe("whsec", now)
    wp.verify_stripe("whsec", f"t={now},v1={good}", RAW, now, 300)
    wp.verify_stripe("whsec", f"t={now},v0=x,v1={'0' * 64},v1={good}", RAW, now + 300, 300)
    refused = [
        f"t={now},v1={good}",  # checked 301 s later
        f"t={now},v1={stripe('other', now)}",
        f"v1={good}",
        f"t=abc,v1={good}",
        f"t=\u00b2,v1={good}",  # a digit to str.isdigit, not to int()
        f"t={now},v1=\u00e9{good[1:]}",
        f"t={now}",
        "",
    ]
    for header in refused:
        with pytest.raises(Unauthenticated):
            wp.verify_stripe("whsec", header, RAW, now + 301, 300)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Acme/Tool",
        "https://github.com/acme/tool.git",
        "http://github.com/acme/tool/",
        "git@github.com:acme/tool.git",
        "ssh://git@github.com:22/acme/tool.git",
        "git://github.com/acme/tool.git",
        "github.com/acme/tool",
    ],
)
def test_every_form_of_a_repository_url_normalises_alike(url: str) -> None:
    assert wp.normalise_repo(url) == "github.com/acme/tool"


def test_other_repositories_and_non_urls_stay_apart() -> None:
    assert wp.normalise_repo("https://gitlab.com/acme/tool") == "gitlab.com/acme/tool"
    assert wp.normalise_repo("https://github.com/acme/tool-two") == "github.com/acme/tool-two"
    assert wp.normalise_repo("file:///srv/git/tool.git") == "/srv/git/tool"
    for nothing in (None, "", "https://github.com/", 42):
        assert wp.normalise_repo(nothing) is None


def test_pushes_name_their_repository_and_new_commits() -> None:
    sha = "ab" * 20
    github = wp.github_push({"after": sha, "repository": {"ssh_url": "git@github.com:a/b.git"}})
    assert github.repos == {"github.com/a/b"} and github.commits == (sha,)
    deleted = wp.github_push({"after": "0" * 40, "deleted": True, "repository": {}})
    assert deleted.commits == ()
    gitlab = wp.gitlab_push(
        {"checkout_sha": sha.upper(), "project": {"git_http_url": "https://gl.example/g/p.git"}}
    )
    assert gitlab.repos == {"gl.example/g/p"} and gitlab.commits == (sha,)
    bitbucket = wp.bitbucket_push(
        {
            "repository": {"full_name": "team/repo"},
            "push": {"changes": [{"new": {"target": {"hash": sha}}}, {"new": None}]},
        }
    )
    assert bitbucket.repos == {"bitbucket.org/team/repo"} and bitbucket.commits == (sha,)
    assert wp.bitbucket_push({"push": {"changes": "nonsense"}}).commits == ()


def test_stripe_events_give_the_orgs_plan_or_why_not() -> None:
    def event(kind: str, **obj: object) -> dict:
        return {"type": kind, "data": {"object": obj}}

    sub = {"metadata": {"org": "acme"}, "items": {"data": [{"price": {"lookup_key": "Pro"}}]}}
    assert wp.stripe_plan_change(event("customer.subscription.created", **sub)) == wp.PlanChange(
        "acme", "pro"
    )
    meta = {"org": "acme", "plan": "team"}
    assert wp.stripe_plan_change(event("checkout.session.completed", metadata=meta)).plan == "team"
    ended = event("customer.subscription.updated", status="canceled", metadata=meta)
    assert wp.stripe_plan_change(ended) == wp.PlanChange("acme", "free")
    deleted = event("customer.subscription.deleted", metadata=meta)
    assert wp.stripe_plan_change(deleted) == wp.PlanChange("acme", "free")
    assert isinstance(wp.stripe_plan_change(event("invoice.paid")), str)
    assert isinstance(wp.stripe_plan_change(event("customer.subscription.created")), str)
    no_plan = event("customer.subscription.created", metadata={"org": "acme"})
    assert isinstance(wp.stripe_plan_change(no_plan), str)
    for odd in ({"org": "ac\u0000me", "plan": "pro"}, {"org": "acme", "plan": "pro plan!"}):
        assert isinstance(
            wp.stripe_plan_change(event("checkout.session.completed", metadata=odd)), str
        )
