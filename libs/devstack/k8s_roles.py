"""`python -m libs.devstack.k8s_roles`: the Kubernetes db-setup Job's command.

It gives each service its own Postgres role and schema (libs/devstack/pgroles.py, as `make run`
does) with the password of the URL the service itself is given (`<SERVICE>_DATABASE_URL`, from
the Secret), connecting as the admin role of `DATABASE_URL`. Migrations are not run here: each
service applies its own at start, under an advisory lock.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from libs.common.bus_access import SERVICES
from libs.devstack import pgroles


def passwords_of(environ: Mapping[str, str]) -> dict[str, str]:
    """Each service's password, taken from its `<SERVICE>_DATABASE_URL`."""
    passwords = {}
    for service in SERVICES:
        name = f"{service.upper()}_DATABASE_URL"
        if not environ.get(name):
            raise SystemExit(f"k8s_roles: {name} is required but not set")
        password = urlsplit(environ[name]).password
        if not password:
            raise SystemExit(f"k8s_roles: {name} has no password")
        passwords[service] = unquote(password)
    return passwords


def main() -> int:
    """Create or update every service's role on DATABASE_URL's database."""
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        print("k8s_roles: DATABASE_URL (the admin role) is required but not set", file=sys.stderr)
        return 2
    roles = asyncio.run(pgroles.ensure_roles(admin_url, passwords_of(os.environ)))
    print("roles ready: " + ", ".join(roles.roles[s] for s in SERVICES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
