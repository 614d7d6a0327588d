"""Browser cookies are `__Host-` cookies (Secure, Path=/, no Domain) wherever they are Secure.

Plain-http development (SWITCHBOARD_COOKIE_SECURE=false) uses the plain names."""

from http.cookies import SimpleCookie

import httpx

from libs.common.authn import CSRF_COOKIE, HOST_PREFIX, SESSION_COOKIE
from tests.support.auth import AuthClient, auth_service

SESSION = HOST_PREFIX + SESSION_COOKIE
CSRF = HOST_PREFIX + CSRF_COOKIE


def set_cookies(resp: httpx.Response) -> dict[str, str]:
    """The raw Set-Cookie header of each cookie the response sets, by name."""
    out = {}
    for name, value in resp.headers.multi_items():
        if name == "set-cookie":
            out[SimpleCookie(value).popitem()[0]] = value
    return out


def host_cookie_rules_hold(header: str) -> bool:
    """A browser keeps a `__Host-` cookie only when it is Secure, has Path=/ and no Domain."""
    parts = [p.strip().lower() for p in header.split(";")]
    return (
        "secure" in parts and "path=/" in parts and not any(p.startswith("domain") for p in parts)
    )


async def test_secure_cookies_are_host_prefixed_and_only_those_are_accepted(
    fresh_db: str, nats_url: str, namespace: str
) -> None:
    async with auth_service(
        fresh_db, nats_url, f"{namespace}k", SWITCHBOARD_COOKIE_SECURE="true"
    ) as auth:
        user = await auth.create_user()
        form = await auth.http.get("/api/v1/auth/login-form")
        csrf = set_cookies(form)[CSRF]
        assert host_cookie_rules_hold(csrf)
        token = SimpleCookie(csrf)[CSRF].value
        # an https browser sends the Secure cookies back; this test's plain-http client is told to
        data = {"username": user.username, "password": user.password, "csrf_token": token}
        signed_in = await auth.http.post(
            "/api/v1/auth/login-form", data=data, headers={"Cookie": f"{CSRF}={token}"}
        )
        assert signed_in.status_code == 200
        cookies = set_cookies(signed_in)
        assert set(cookies) == {SESSION, CSRF}
        assert all(host_cookie_rules_hold(c) for c in cookies.values())
        assert "httponly" in cookies[SESSION].lower()
        session = SimpleCookie(cookies[SESSION])[SESSION].value
        me = await auth.http.get("/api/v1/auth/me", headers={"Cookie": f"{SESSION}={session}"})
        assert me.status_code == 200
        # the same session under the plain name (as a sibling host could set it) is no credential
        plain = await auth.http.get(
            "/api/v1/auth/me", headers={"Cookie": f"{SESSION_COOKIE}={session}"}
        )
        assert plain.status_code == 401
        # nor does a tossed plain CSRF cookie pass the double-submit check
        tossed = {"Cookie": f"{SESSION}={session}; {CSRF_COOKIE}=known", "X-CSRF-Token": "known"}
        out = await auth.http.post("/api/v1/auth/logout-form", headers=tossed)
        assert out.status_code == 403


async def test_plain_http_development_uses_the_plain_names(auth: AuthClient) -> None:
    form = await auth.http.get("/api/v1/auth/login-form")
    cookies = set_cookies(form)
    assert set(cookies) == {CSRF_COOKIE}
    assert "secure" not in [p.strip().lower() for p in cookies[CSRF_COOKIE].split(";")]
