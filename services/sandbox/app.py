"""The sandbox service app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from services.sandbox import consumers, rpc, runtime
from services.sandbox.code_server import CodeServer
from services.sandbox.routes import approvals, files, lifecycle, policy, status, terminal, tools
from services.sandbox.settings import SandboxSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: SandboxSettings) -> Starlette:
    """Build the sandbox app."""

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async with runtime.running(settings, state["pool"], state["bus"], state["instance"]) as rt:
            await rpc.serve(state["bus"], rt, CodeServer(rt))
            await consumers.start(state["bus"], rt)
            app.state.runtime = rt  # tests and tools reach the live runtime here
            yield {"runtime": rt}

    app = build_app(
        settings,
        [
            *status.routes,
            *lifecycle.routes,
            *tools.routes,
            *approvals.routes,
            *policy.routes,
            *files.routes,
            *terminal.routes,
        ],
        migrations=MIGRATIONS_DIR,
        extra=extra,
    )
    return app
