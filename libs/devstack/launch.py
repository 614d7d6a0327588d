"""What `make run` launches from a checkout: the stack's config and env, built in one place.

`python -m libs.devstack run` and the acceptance suite (tests/acceptance) both build their stack
here, so the suite boots exactly what users run.
"""

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from libs.devstack import devsecrets, proc
from libs.devstack.stack import StackConfig

DATABASE = "switchboard"  # created on a Postgres `make run` did not get from DATABASE_URL


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


def interpreter(root: Path) -> str:
    """The Python `make run` starts the services with: the checkout's .venv, else this one."""
    venv = root / ".venv" / "bin" / "python"
    if root == proc.ROOT or not venv.exists():
        return sys.executable
    return str(venv)


def stack_config(
    database_url: str, nats_url: str, port: int, root: Path = proc.ROOT
) -> tuple[StackConfig, AdminLogin]:
    """The stack `make run` starts from the checkout at root, and its admin's credentials.

    The env is what `make run` adds to the caller's: the admin's credentials, the dev secrets
    (generated once into .run/), a short drain and SWITCHBOARD_NAMESPACE; the stack adds
    DATABASE_URL, NATS_URL, the public URL, its free ports and its local defaults.
    """
    run_dir = proc.run_dir(root)
    admin = admin_credentials(run_dir)
    env = {"SWITCHBOARD_ADMIN_USER": admin.user, "SWITCHBOARD_ADMIN_PASSWORD": admin.password}
    env.update(devsecrets.load(run_dir / "dev-secrets.env"))
    # Short drain so Ctrl-C is quick; a variable set by the caller wins.
    env["SWITCHBOARD_DRAIN_S"] = os.environ.get("SWITCHBOARD_DRAIN_S", "2")
    config = StackConfig(
        database_url=database_url,
        nats_url=nats_url,
        port=port,
        namespace=os.environ.get("SWITCHBOARD_NAMESPACE", ""),
        log_dir=run_dir / "logs",
        env=env,
        root=root,
        python=interpreter(root),
    )
    return config, admin
