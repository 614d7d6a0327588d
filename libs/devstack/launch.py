"""What `make run` launches from a checkout: the stack's config and env, built in one place.

`python -m libs.devstack run` and the acceptance suite (tests/acceptance) both build their stack
here, so the suite boots exactly what users run.
"""

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from libs.common.bus_access import SERVICES
from libs.devstack import devsecrets, natsauth, pgroles, proc
from libs.devstack.nats import server_info
from libs.devstack.natsauth import NatsAuth
from libs.devstack.stack import StackConfig

DATABASE = "switchboard"  # created on a Postgres `make run` did not get from DATABASE_URL
NATS_CREDENTIALS = "nats-credentials.env"  # in .run/: each service's NATS user and password
DB_CREDENTIALS = "db-credentials.env"  # in .run/: each service's database URL (its own role)


@dataclass(frozen=True)
class AdminLogin:
    """The first platform admin's credentials, and how `make run` shows the password."""

    user: str
    password: str = field(repr=False)
    shown_as: str = field(repr=False)
    kept_in: Path | None = None


def admin_credentials(run_dir: Path) -> AdminLogin:
    """SWITCHBOARD_ADMIN_USER/_PASSWORD, else a password generated once into run_dir."""
    user = os.environ.get("SWITCHBOARD_ADMIN_USER") or "admin"
    password = os.environ.get("SWITCHBOARD_ADMIN_PASSWORD")
    if password:
        return AdminLogin(user, password, "(as set in SWITCHBOARD_ADMIN_PASSWORD)")
    path = run_dir / "admin-password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(18) + "\n")
    password = path.read_text().strip()
    return AdminLogin(user, password, f"{password}   (kept in {path})", kept_in=path)


@dataclass(frozen=True)
class Credentials:
    """How each service signs in to Postgres and NATS, and what `make run` says about it."""

    service_env: dict[str, dict[str, str]] = field(repr=False)
    postgres: str  # one line each for the banner
    nats: str


def namespace() -> str:
    """SWITCHBOARD_NAMESPACE of the caller (empty: none)."""
    return os.environ.get("SWITCHBOARD_NAMESPACE", "")


def nats_auth(root: Path = proc.ROOT, space: str | None = None) -> NatsAuth:
    """The users of the private NATS `make run` starts (passwords kept in .run/, 0600).

    Their permissions are for the namespace `space`, else the caller's SWITCHBOARD_NAMESPACE."""
    return natsauth.load(
        proc.run_dir(root) / NATS_CREDENTIALS, namespace() if space is None else space
    )


async def database_roles(
    admin_url: str, root: Path, keep_in: Path | None = None
) -> tuple[dict[str, dict[str, str]], str]:
    """Each service's own role on admin_url's database, created there by the admin role.

    The URLs are kept in `keep_in`, else .run/db-credentials.env (0600); a service whose
    <SERVICE>_DATABASE_URL is set keeps that."""
    services = tuple(s for s in SERVICES if not os.environ.get(f"{s.upper()}_DATABASE_URL"))
    if not services:
        return {}, "each service connects with its <SERVICE>_DATABASE_URL"
    path = keep_in or proc.run_dir(root) / DB_CREDENTIALS
    try:
        roles = await pgroles.ensure_roles(admin_url, pgroles.stored_passwords(path), services)
    except (pgroles.RolesUnavailable, asyncpg.PostgresError) as exc:
        return {}, f"NO per-service roles ({exc}): every service connects with DATABASE_URL"
    devsecrets.write(path, {**devsecrets.read(path), **roles.all_env()})
    names = ", ".join(roles.roles[s] for s in services)
    return (
        {s: roles.service_env(s) for s in services},
        f"each service as its own role, rights on its own schema only ({names}; URLs in {path})",
    )


def nats_credentials(url: str, auth: NatsAuth | None, root: Path) -> tuple[dict, str]:
    """Each service's NATS user: from `auth`, else from the caller's environment.

    `auth` holds the users of a private server `make run` started; the environment sets
    <SERVICE>_NATS_USER/_PASSWORD, else NATS_USER/NATS_PASSWORD."""
    if auth is not None:
        path = proc.run_dir(root) / NATS_CREDENTIALS
        return (
            {s: auth.service_env(s) for s in SERVICES},
            f"a user per service, each only its own subjects (passwords in {path})",
        )
    shared = os.environ.get("NATS_USER")
    given = [s for s in SERVICES if os.environ.get(f"{s.upper()}_NATS_USER") or shared]
    if len(given) < len(SERVICES) and server_info(url).get("auth_required"):
        missing = ", ".join(f"{s.upper()}_NATS_USER" for s in SERVICES if s not in given)
        raise RuntimeError(
            f"NATS at {url} requires credentials and none are set for {missing} "
            "(or NATS_USER/NATS_PASSWORD); see docs/ARCHITECTURE.md, 'The infrastructure refuses'."
        )
    if not given:
        return {}, (
            "external and WITHOUT authentication: anything on this host can call rpc.* and read "
            "events.* (unset NATS_URL and stop that server to get a private one with a user "
            "per service)"
        )
    return {}, "external; each service signs in as its <SERVICE>_NATS_USER (else NATS_USER)"


async def service_credentials(
    admin_url: str,
    nats_url: str,
    auth: NatsAuth | None,
    root: Path = proc.ROOT,
    keep_in: Path | None = None,
) -> Credentials:
    """The database roles (created now) and NATS users the services of `make run` use.

    `keep_in`: the file the roles' URLs go to (another stack than `make run`'s keeps its own)."""
    db_env, db_note = await database_roles(admin_url, root, keep_in)
    nats_env, nats_note = nats_credentials(nats_url, auth, root)
    merged = {s: {**db_env.get(s, {}), **nats_env.get(s, {})} for s in SERVICES}
    return Credentials(merged, db_note, nats_note)


def interpreter(root: Path) -> str:
    """The Python `make run` starts the services with: the checkout's .venv, else this one."""
    venv = root / ".venv" / "bin" / "python"
    if root == proc.ROOT or not venv.exists():
        return sys.executable
    return str(venv)


def stack_config(
    database_url: str,
    nats_url: str,
    port: int,
    root: Path = proc.ROOT,
    credentials: Credentials | None = None,
    space: str | None = None,
) -> tuple[StackConfig, AdminLogin]:
    """The stack `make run` starts from the checkout at root, and its admin's credentials.

    The env is what `make run` adds to the caller's: the admin's credentials, the dev secrets
    (generated once into .run/), a short drain, SWITCHBOARD_NAMESPACE (`space`, else the
    caller's) and each service's own database URL and NATS user (`credentials`); the stack adds
    DATABASE_URL, NATS_URL, the public URL, its free ports and its local defaults.
    """
    run_dir = proc.run_dir(root)
    admin = admin_credentials(run_dir)
    env = {"SWITCHBOARD_ADMIN_USER": admin.user, "SWITCHBOARD_ADMIN_PASSWORD": admin.password}
    env.update(devsecrets.load(run_dir / "dev-secrets.env"))
    # Short drain so Ctrl-C is quick; a variable set by the caller wins.
    env["SWITCHBOARD_DRAIN_S"] = os.environ.get("SWITCHBOARD_DRAIN_S", "2")
    service_env = credentials.service_env if credentials is not None else {}
    own = all(f"{s.upper()}_DATABASE_URL" in service_env.get(s, {}) for s in SERVICES)
    config = StackConfig(
        database_url="" if own else database_url,  # the admin's URL only where it is needed
        nats_url=nats_url,
        port=port,
        namespace=namespace() if space is None else space,
        log_dir=run_dir / "logs",
        env=env,
        service_env=service_env,
        root=root,
        python=interpreter(root),
    )
    return config, admin
