"""Auth's /metrics: sign-ins by outcome, lockouts, token verifications, pool and NATS figures."""

import httpx
import pyotp

from tests.support.auth import AuthClient, auth_service
from tests.support.metrics import scrape, value

LOGINS = "switchboard_auth_logins_total"
VERIFICATIONS = "switchboard_auth_token_verifications_total"


async def test_sign_ins_count_by_outcome(auth: AuthClient) -> None:
    user = await auth.create_user()
    before = await scrape(auth.http)
    await auth.login(user.username, user.password)
    wrong = {"username": user.username, "password": "Not-The-Passw0rd!"}
    assert (await auth.http.post("/api/v1/auth/login", json=wrong)).status_code == 401
    enrol = await auth.call("POST", "/api/v1/auth/mfa/enroll", user.token, expect=201)
    totp = pyotp.TOTP(enrol["secret"])
    await auth.call("POST", "/api/v1/auth/mfa/confirm", user.token, json={"code": totp.now()})
    creds = {"username": user.username, "password": user.password}
    assert (await auth.http.post("/api/v1/auth/login", json=creds)).status_code == 401
    after = await scrape(auth.http)
    for outcome, moved in (("succeeded", 1), ("failed", 1), ("mfa_required", 1)):
        delta = value(after, LOGINS, outcome=outcome) - value(before, LOGINS, outcome=outcome)
        assert delta >= moved, outcome


async def test_token_verifications_count_by_kind_and_outcome(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    user = await auth.create_user()
    key = await auth.api_key(user.token)
    before = await scrape(auth.http)
    assert (await probe.get("/api/v1/probe/whoami", headers=auth.bearer(key))).status_code == 200
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    assert (await probe.get("/api/v1/probe/whoami", headers=auth.bearer(forged))).status_code == 401
    after = await scrape(auth.http)

    def moved(outcome: str) -> float:
        return value(after, VERIFICATIONS, kind="opaque", outcome=outcome) - value(
            before, VERIFICATIONS, kind="opaque", outcome=outcome
        )

    assert moved("valid") >= 1
    assert moved("rejected") >= 1


async def test_a_locked_source_counts_a_lockout_then_locked_sign_ins(
    auth: AuthClient, pg_url: str, nats_url: str, namespace: str
) -> None:
    async with auth_service(
        pg_url,
        nats_url,
        f"{namespace}m",
        AUTH_MAX_SOURCE_FAILURES=2,
        SWITCHBOARD_ADMIN_TOKEN=auth.admin_api_token,
    ) as strict:
        before = await scrape(strict.http)
        source = {"X-Real-IP": "203.0.113.77"}
        body = {"username": "nobody-metrics", "password": "Wrong-Passw0rd!"}
        for _ in range(2):
            resp = await strict.http.post("/api/v1/auth/login", json=body, headers=source)
            assert resp.status_code == 401
        resp = await strict.http.post("/api/v1/auth/login", json=body, headers=source)
        assert resp.status_code == 429
        after = await scrape(strict.http)
    lockouts = "switchboard_auth_lockouts_total"
    assert value(after, lockouts) - value(before, lockouts) >= 1
    assert value(after, LOGINS, outcome="locked") - value(before, LOGINS, outcome="locked") >= 1


async def test_pool_and_nats_figures_are_exported(auth: AuthClient) -> None:
    samples = await scrape(auth.http)
    assert value(samples, "switchboard_nats_connected", service="auth") == 1
    assert value(samples, "switchboard_db_pool_max_connections", service="auth") >= 1
    assert (
        "switchboard_db_pool_connections",
        frozenset({("service", "auth"), ("state", "idle")}),
    ) in samples
    assert ("switchboard_nats_reconnects_total", frozenset({("service", "auth")})) in samples
