"""The users of a private nats-server: one per service with its permissions, generated once.

`make run` keeps the passwords in `.run/nats-credentials.env` (mode 0600, the variables each
service reads: `AUTH_NATS_USER`, `AUTH_NATS_PASSWORD`, ...) and writes the server's
configuration next to its store; test stacks generate theirs in memory.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libs.common.bus_access import SERVICES, permissions
from libs.devstack import devsecrets

ADMIN = "devstack"  # the test stacks' own user, for their probes; `make run` has none


@dataclass(frozen=True)
class NatsUser:
    """One nats-server user."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class NatsAuth:
    """The users of one private nats-server and the namespace their permissions are for."""

    namespace: str
    users: dict[str, NatsUser]  # by service
    admin: NatsUser | None = None  # every permission (test stacks only)

    def authorization(self) -> dict[str, Any]:
        """The server's `authorization` block: each service's user with its permissions."""
        users = [
            {"user": u.name, "password": u.password, "permissions": permissions(s, self.namespace)}
            for s, u in self.users.items()
        ]
        if self.admin is not None:
            users.append({"user": self.admin.name, "password": self.admin.password})
        return {"users": users}

    def service_env(self, service: str) -> dict[str, str]:
        """The variables one service reads its NATS credentials from."""
        user = self.users[service]
        prefix = service.upper()
        return {f"{prefix}_NATS_USER": user.name, f"{prefix}_NATS_PASSWORD": user.password}

    def all_env(self) -> dict[str, str]:
        """Every service's variables (services read only their own)."""
        return {k: v for s in self.users for k, v in self.service_env(s).items()}

    def admin_url(self, url: str) -> str:
        """The NATS URL `url` with the admin's credentials (test stacks' probes)."""
        if self.admin is None:
            raise ValueError("this server has no admin user")
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{self.admin.name}:{self.admin.password}@{rest}"


def _password() -> str:
    """A new random password."""
    return secrets.token_urlsafe(24)


def generate(namespace: str = "", *, admin: bool = False) -> NatsAuth:
    """New users for every service (and an admin user for a test stack's probes)."""
    users = {s: NatsUser(s, _password()) for s in SERVICES}
    return NatsAuth(namespace, users, NatsUser(ADMIN, _password()) if admin else None)


def load(path: Path, namespace: str = "") -> NatsAuth:
    """The services' users, their passwords kept in path (mode 0600) and generated once."""
    stored = devsecrets.read(path)
    users: dict[str, NatsUser] = {}
    for service in SERVICES:
        prefix = service.upper()
        name = stored.get(f"{prefix}_NATS_USER") or service
        users[service] = NatsUser(name, stored.get(f"{prefix}_NATS_PASSWORD") or _password())
    auth = NatsAuth(namespace, users)
    if auth.all_env() != {k: v for k, v in stored.items() if k in auth.all_env()}:
        devsecrets.write(path, {**stored, **auth.all_env()})
    return auth


def server_config(auth: NatsAuth) -> str:
    """The nats-server configuration holding the users (JSON is valid nats-server syntax)."""
    return json.dumps({"authorization": auth.authorization()}, indent=2) + "\n"
