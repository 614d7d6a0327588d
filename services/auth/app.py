"""The auth service app."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette

from libs.common.app import build_app
from libs.common.authn import hash_token
from services.auth import binding, bootstrap, metrics, principals, rpc
from services.auth.context import AuthContext
from services.auth.passwords import Passwords
from services.auth.routes import auth, browser, keys, mfa, oauth, orgs, teams, users
from services.auth.settings import AuthSettings
from services.auth.signing import KeyStore
from services.auth.store import credentials

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = structlog.get_logger()


def create_app(settings: AuthSettings) -> Starlette:
    """Build the auth app."""

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        pool, bus = state["pool"], state["bus"]
        keystore = KeyStore(settings.key_encryption_secret, settings.access_ttl_s)
        await keystore.ensure(pool)
        await _install_admin_token(pool, settings)
        passwords = Passwords(settings)
        if settings.bootstrap_admin:
            await bootstrap.first_admin(pool, passwords, settings)
        await rpc.serve(bus, pool, keystore)
        binder = asyncio.create_task(binding.bind_forever(pool, bus))
        figures = metrics.watch_credentials(
            pool, settings.signing_key_rotation_days, settings.credential_metrics_s
        )
        try:
            verifier = principals.LocalVerifier(bus, pool, keystore, settings.cookie_secure)
            context = AuthContext(pool, bus, settings, keystore, passwords, verifier)
            # libs.common.authn reads the verifier from the state; the handlers read `auth`
            yield {"verifier": verifier, "auth": context}
        finally:
            metrics.CREDENTIALS.detach(figures)
            binder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await binder

    routes = [
        *auth.routes,
        *browser.routes,
        *mfa.routes,
        *users.routes,
        *orgs.routes,
        *teams.routes,
        *keys.routes,
        *oauth.routes,
    ]
    return build_app(settings, routes, migrations=MIGRATIONS_DIR, extra=extra)


async def _install_admin_token(pool: Any, settings: AuthSettings) -> None:
    """Make SWITCHBOARD_ADMIN_TOKEN the live admin token when it is set and not already."""
    token = settings.admin_token
    if not token:
        return
    if not token.startswith("sba_") or len(token) < 24:
        log.warning("admin_token_ignored", reason="must start with sba_ and be 24+ characters")
        return
    digest = hash_token(token)
    async with pool.acquire() as conn, conn.transaction():
        if not await credentials.admin_token_exists(conn, digest):
            await credentials.replace_admin_token(conn, token[:10], digest, None)
