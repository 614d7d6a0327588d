"""The credentials the devstack hands out: one per service, nothing of the others.

No secret shows in a repr."""

from urllib.parse import urlsplit

from libs.common.bus_access import SERVICES
from libs.devstack import natsauth, pgroles


def test_each_service_gets_its_own_nats_user_and_make_runs_server_has_no_admin() -> None:
    auth = natsauth.generate("t1")
    users = auth.authorization()["users"]
    assert [u["user"] for u in users] == list(SERVICES)
    assert len({u["password"] for u in users}) == len(SERVICES)
    gateway = auth.service_env("gateway")
    assert set(gateway) == {"GATEWAY_NATS_USER", "GATEWAY_NATS_PASSWORD"}
    assert gateway["GATEWAY_NATS_PASSWORD"] not in repr(auth)
    probing = natsauth.generate("t1", admin=True)
    admin = probing.authorization()["users"][-1]
    assert admin["user"] == natsauth.ADMIN and "permissions" not in admin


def test_a_role_url_names_the_role_on_the_admins_server_and_database() -> None:
    url = pgroles.role_url("postgresql://postgres@db.example:6432/switchboard", "sw_auth", "p/w@x")
    parts = urlsplit(url)
    assert (parts.username, parts.hostname, parts.port, parts.path) == (
        "sw_auth",
        "db.example",
        6432,
        "/switchboard",
    )
    assert parts.password == "p%2Fw%40x"  # quoted: the URL parses back to the same password
    assert pgroles.role_name("switchboard", "registry") == "switchboard_registry"
    roles = pgroles.ServiceRoles("switchboard", {"auth": "switchboard_auth"}, {"auth": url})
    assert "p%2Fw" not in repr(roles)
    assert roles.service_env("auth") == {"AUTH_DATABASE_URL": url}
