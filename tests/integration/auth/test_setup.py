"""First start and one-time setup, each on a database of its own."""

import re

import pytest

from tests.support.auth import auth_service


async def test_setup_creates_the_first_admin_once(
    fresh_db: str, nats_url: str, namespace: str
) -> None:
    async with auth_service(fresh_db, nats_url, f"{namespace}a", AUTH_BOOTSTRAP_ADMIN="false") as a:
        assert (await a.http.get("/api/v1/auth/setup")).json() == {"setup_required": True}
        weak = await a.http.post("/api/v1/auth/setup", json={"username": "root", "password": "x"})
        assert weak.status_code == 422
        assert "password" in weak.json()["error"]["details"]["fields"]
        body = {"username": "root", "password": "Very-Strong-Pass-1"}
        made = await a.http.post("/api/v1/auth/setup", json=body)
        assert made.status_code == 201
        assert made.json()["user"]["platform_role"] == "platform_admin"
        again = await a.http.post("/api/v1/auth/setup", json=body)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "CONFLICT"
        assert (await a.http.get("/api/v1/auth/setup")).json() == {"setup_required": False}
        await a.login("root", "Very-Strong-Pass-1")


async def test_the_first_start_creates_the_admin_and_prints_a_generated_password_once(
    fresh_db: str, nats_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SWITCHBOARD_ADMIN_USER": "boss", "SWITCHBOARD_ADMIN_PASSWORD": ""}
    async with auth_service(fresh_db, nats_url, f"{namespace}b", **env) as a:
        printed = capsys.readouterr().err
        match = re.search(r"platform admin 'boss' created with password (\S+) ", printed)
        assert match
        await a.login("boss", match.group(1))
    async with auth_service(fresh_db, nats_url, f"{namespace}b", **env):
        assert "created with password" not in capsys.readouterr().err
