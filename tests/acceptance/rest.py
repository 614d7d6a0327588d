"""REST through nginx for the acceptance tests: checked answers that name the capability."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from libs.devstack.launch import AdminLogin


@dataclass(frozen=True)
class Admin:
    """The platform admin's credentials (never shown in reprs or failure messages)."""

    token: str = field(repr=False)
    key: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of the JWT."""
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def expect(resp: httpx.Response, status: int, capability: str) -> Any:
    """The JSON body of `resp` after asserting its status.

    A failure names the capability and shows the answer (error answers carry no credential)."""
    assert resp.status_code == status, (
        f"{capability}: {resp.request.method} {resp.request.url.path} answered "
        f"{resp.status_code}, expected {status}: {resp.text[:600]}"
    )
    return resp.json() if resp.content else None


def error_code(resp: httpx.Response) -> str | None:
    """`error.code` of an error envelope, None when the body is not one."""
    try:
        body = resp.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


async def sign_in_admin(api: httpx.AsyncClient, login: AdminLogin) -> Admin:
    """Sign in as the admin `make run` created and make an API key."""
    resp = await api.post(
        "/api/v1/auth/login", json={"username": login.user, "password": login.password}
    )
    token = expect(resp, 200, "auth: the admin make run created signs in")["access_token"]
    resp = await api.post(
        "/api/v1/keys", json={"name": unique("acceptance")}, headers=bearer(token)
    )
    key = expect(resp, 201, "auth: the admin creates an API key")["key"]
    return Admin(token, key)
