"""The browser session and CSRF cookies' names, prefixed `__Host-` when they are Secure."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

SESSION_COOKIE = "sb_session"
CSRF_COOKIE = "sb_csrf"
# a `__Host-` cookie is Secure, Path=/ and has no Domain: no other host (a sibling subdomain)
# and no plain-http page can set or replace it, so the CSRF double-submit cannot be forged
HOST_PREFIX = "__Host-"


@dataclass(frozen=True)
class CookieNames:
    """The browser cookies' names: `__Host-` prefixed when they are Secure (every deployment).

    They are plain on plain-http development, where a browser refuses a prefixed cookie without
    Secure."""

    session: str
    csrf: str
    secure: bool


def cookie_names(secure: bool) -> CookieNames:
    """The names of the session and CSRF cookies for SWITCHBOARD_COOKIE_SECURE."""
    prefix = HOST_PREFIX if secure else ""
    return CookieNames(prefix + SESSION_COOKIE, prefix + CSRF_COOKIE, secure)


def cookies_of(conn: HTTPConnection) -> CookieNames:
    """The cookie names the service in charge of this request uses (Secure when unknown)."""
    verifier = getattr(conn.state, "verifier", None)
    return getattr(verifier, "cookies", None) or cookie_names(True)
