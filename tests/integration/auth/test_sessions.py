"""Sessions: refresh, logout, change-password, lockout, MFA, browser cookie + CSRF, key rotation."""

import asyncio

import httpx
import jwt
import pyotp

from libs.common.authn import CSRF_COOKIE, SESSION_COOKIE
from libs.devstack.harness import until
from tests.support.auth import AuthClient, auth_service, unique

WHOAMI = "/api/v1/probe/whoami"


async def test_refresh_gives_a_working_access_token(auth: AuthClient) -> None:
    user = await auth.create_user()
    first = await auth.login(user.username, user.password)
    resp = await auth.http.post(
        "/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert resp.status_code == 200
    me = await auth.call("GET", "/api/v1/auth/me", resp.json()["access_token"])
    assert me["user"]["id"] == user.id


async def test_logout_with_the_refresh_token_ends_that_session(auth: AuthClient) -> None:
    user = await auth.create_user()
    other = await auth.login(user.username, user.password)
    await auth.call(
        "POST", "/api/v1/auth/logout", user.token, json={"refresh_token": other["refresh_token"]}
    )
    resp = await auth.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert resp.status_code == 401


async def test_changing_the_password_ends_other_sessions(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    user = await auth.create_user()
    other = await auth.login(user.username, user.password)
    body = {"current_password": user.password, "new_password": "N3w-Passw0rd-Long!"}
    await auth.call("POST", "/api/v1/auth/change-password", user.token, json=body)
    assert (
        await auth.http.get("/api/v1/auth/me", headers=auth.bearer(user.token))
    ).status_code == 200

    async def signed_out() -> bool:
        resp = await probe.get(WHOAMI, headers=auth.bearer(other["access_token"]))
        return resp.status_code == 401

    await until(signed_out, timeout=1, interval=0.02, what="the other session to end")
    old = await auth.http.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert old.status_code == 401
    await auth.login(user.username, "N3w-Passw0rd-Long!")


async def test_a_wrong_current_password_or_a_weak_new_one_is_refused(auth: AuthClient) -> None:
    user = await auth.create_user()
    wrong = {"current_password": "nope-nope-nope", "new_password": "N3w-Passw0rd-Long!"}
    resp = await auth.http.post(
        "/api/v1/auth/change-password", json=wrong, headers=auth.bearer(user.token)
    )
    assert resp.status_code == 401
    weak = {"current_password": user.password, "new_password": "short"}
    resp = await auth.http.post(
        "/api/v1/auth/change-password", json=weak, headers=auth.bearer(user.token)
    )
    assert resp.status_code == 422
    assert "new_password" in resp.json()["error"]["details"]["fields"]


async def failing(auth: AuthClient, name: str, times: int, **headers: str) -> list[tuple]:
    """Sign in as `name` with a wrong password `times` in a row.

    Returns each answer's status, error code and message."""
    body = {"username": name, "password": "Wrong-Passw0rd!"}
    answers = []
    for _ in range(times):
        resp = await auth.http.post("/api/v1/auth/login", json=body, headers=headers)
        error = resp.json()["error"]
        answers.append((resp.status_code, error["code"], error["message"]))
    return answers


async def test_an_unknown_name_and_a_wrong_password_get_the_same_answers(auth: AuthClient) -> None:
    user = await auth.create_user()
    known = await failing(auth, user.username, 8, **{"X-Real-IP": "198.51.100.1"})
    unknown = await failing(auth, unique("nobody"), 8, **{"X-Real-IP": "198.51.100.2"})
    assert known == unknown
    assert {status for status, _, _ in known} == {401}  # paced after 5, never locked


async def test_a_paced_name_takes_one_attempt_at_a_time_whether_it_exists_or_not(
    auth: AuthClient,
) -> None:
    user = await auth.create_user()
    for name in (user.username, unique("nobody")):
        await failing(auth, name, 5)
        body = {"username": name, "password": "Wrong-Passw0rd!"}
        answers = await asyncio.gather(
            *(auth.http.post("/api/v1/auth/login", json=body) for _ in range(3))
        )
        assert sorted(r.status_code for r in answers) == [401, 429, 429], name
        busy = next(r for r in answers if r.status_code == 429)
        assert busy.json()["error"]["code"] == "RATE_LIMITED"
        assert int(busy.headers["retry-after"]) >= 1


async def test_strangers_failing_cannot_lock_a_user_out(auth: AuthClient) -> None:
    user = await auth.create_user()
    for i in range(12):  # from many addresses, so no source is locked either
        await failing(auth, user.username, 1, **{"X-Real-IP": f"198.51.100.{10 + i}"})
    good = {"username": user.username, "password": user.password}
    resp = await auth.http.post("/api/v1/auth/login", json=good)
    assert resp.status_code == 200  # after the name's delay, not a lock
    assert (await failing(auth, user.username, 1))[0][0] == 401  # the success reset the run


async def test_x_real_ip_counts_only_when_a_trusted_proxy_sent_it(
    fresh_db: str, nats_url: str, namespace: str
) -> None:
    # a database of its own: the source it locks is this test process's own address
    async with auth_service(
        fresh_db,
        nats_url,
        f"{namespace}p",
        AUTH_MAX_SOURCE_FAILURES=3,
        AUTH_TRUSTED_PROXIES="203.0.113.0/24",  # not the test's own address
    ) as strict:
        for i in range(3):
            claimed = {"X-Real-IP": f"192.0.2.{i}", "X-Forwarded-For": f"198.51.100.{i}"}
            answer = await failing(strict, unique("nobody"), 1, **claimed)
            assert answer[0][0] == 401
        # every attempt came from this peer, whatever it claimed: that source is locked
        answer = await failing(strict, unique("nobody"), 1, **{"X-Real-IP": "192.0.2.99"})
        assert answer[0][:2] == (429, "RATE_LIMITED")


async def test_too_many_failures_from_one_source_lock_the_source(
    auth: AuthClient, pg_url: str, nats_url: str, namespace: str
) -> None:
    # same database: keep the package's admin token, or this second service would replace it
    async with auth_service(
        pg_url,
        nats_url,
        f"{namespace}s",
        AUTH_MAX_SOURCE_FAILURES=3,
        SWITCHBOARD_ADMIN_TOKEN=auth.admin_api_token,
    ) as strict:
        source = {"X-Real-IP": "203.0.113.7"}
        for i in range(3):
            body = {"username": f"nobody-{i}", "password": "Wrong-Passw0rd!"}
            resp = await strict.http.post("/api/v1/auth/login", json=body, headers=source)
            assert resp.status_code == 401
        body = {"username": "nobody-x", "password": "Wrong-Passw0rd!"}
        resp = await strict.http.post("/api/v1/auth/login", json=body, headers=source)
        assert resp.status_code == 429
        elsewhere = await strict.http.post(
            "/api/v1/auth/login", json=body, headers={"X-Real-IP": "203.0.113.8"}
        )
        assert elsewhere.status_code == 401


async def test_mfa_enrol_confirm_require_and_disable(auth: AuthClient) -> None:
    user = await auth.create_user()
    enrol = await auth.call("POST", "/api/v1/auth/mfa/enroll", user.token, expect=201)
    assert enrol["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrol["secret"])
    bad = await auth.http.post(
        "/api/v1/auth/mfa/confirm", json={"code": "000000"}, headers=auth.bearer(user.token)
    )
    assert bad.status_code == 422
    await auth.call("POST", "/api/v1/auth/mfa/confirm", user.token, json={"code": totp.now()})
    creds = {"username": user.username, "password": user.password}
    resp = await auth.http.post("/api/v1/auth/login", json=creds)
    assert resp.status_code == 401
    assert resp.json()["error"]["details"]["mfa_required"] is True
    token = (await auth.login(user.username, user.password, mfa_code=totp.now()))["access_token"]
    await auth.call("POST", "/api/v1/auth/mfa/disable", token, json={"code": totp.now()})
    await auth.login(user.username, user.password)


async def test_browser_login_sets_an_httponly_cookie_and_needs_csrf_for_changes(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    user = await auth.create_user()
    async with httpx.AsyncClient(base_url=auth.url) as browser:
        form = await browser.get("/api/v1/auth/login-form")
        assert form.status_code == 200 and "<form" in form.text
        csrf = browser.cookies[CSRF_COOKIE]
        data = {"username": user.username, "password": user.password, "csrf_token": csrf}
        resp = await browser.post("/api/v1/auth/login-form", data=data)
        assert resp.status_code == 200
        set_cookie = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in set_cookie if c.startswith(SESSION_COOKIE))
        assert "HttpOnly" in session and "SameSite=lax" in session
        assert browser.cookies[SESSION_COOKIE].startswith("sbs_")
        me = await browser.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["user"]["id"] == user.id
        cookies = {"Cookie": f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}"}
        elsewhere = await probe.get(WHOAMI, headers=cookies)
        assert elsewhere.status_code == 200
        no_csrf = await browser.post("/api/v1/auth/logout-form")
        assert no_csrf.status_code == 403
        assert no_csrf.json()["error"]["code"] == "FORBIDDEN"
        token = browser.cookies[CSRF_COOKIE]
        out = await browser.post("/api/v1/auth/logout-form", headers={"X-CSRF-Token": token})
        assert out.status_code == 200

        async def signed_out() -> bool:
            return (await probe.get(WHOAMI, headers=cookies)).status_code == 401

        await until(signed_out, timeout=1, interval=0.02, what="the session to end elsewhere")


async def test_the_login_form_refuses_a_missing_csrf_echo(auth: AuthClient) -> None:
    user = await auth.create_user()
    data = {"username": user.username, "password": user.password}
    resp = await auth.http.post("/api/v1/auth/login-form", data=data)
    assert resp.status_code == 403


async def test_rotating_the_signing_key_keeps_old_tokens_valid(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    user = await auth.create_user()
    old_kid = jwt.get_unverified_header(user.token)["kid"]
    rotated = await auth.call("POST", "/api/v1/auth/signing-keys/rotate", expect=201)
    assert rotated["previous"] == old_kid
    fresh = await auth.login(user.username, user.password)
    assert jwt.get_unverified_header(fresh["access_token"])["kid"] == rotated["kid"]
    kids = {k["kid"] for k in (await auth.http.get("/api/v1/auth/jwks.json")).json()["keys"]}
    assert {old_kid, rotated["kid"]} <= kids
    for token in (user.token, fresh["access_token"]):
        resp = await probe.get(WHOAMI, headers=auth.bearer(token))
        assert resp.status_code == 200


async def test_the_json_logout_with_the_cookie_needs_csrf_and_clears_the_cookies(
    auth: AuthClient,
) -> None:
    user = await auth.create_user()
    async with httpx.AsyncClient(base_url=auth.url) as browser:
        await browser.get("/api/v1/auth/login-form")
        data = {
            "username": user.username,
            "password": user.password,
            "csrf_token": browser.cookies[CSRF_COOKIE],
        }
        assert (await browser.post("/api/v1/auth/login-form", data=data)).status_code == 200
        assert (await browser.post("/api/v1/auth/logout")).status_code == 403
        csrf = {"X-CSRF-Token": browser.cookies[CSRF_COOKIE]}
        out = await browser.post("/api/v1/auth/logout", headers=csrf)
        assert out.status_code == 200 and out.json()["session_ended"] is True
        assert SESSION_COOKIE not in browser.cookies
        assert (await browser.get("/api/v1/auth/me")).status_code == 401
