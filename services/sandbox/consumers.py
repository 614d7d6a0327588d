"""Events the sandbox follows: registry server changes drop cached specs and stop old processes."""

from __future__ import annotations

from libs.common import subjects
from libs.common.bus import Bus
from libs.common.events import Event
from services.sandbox.runtime import Runtime

STOP_ON = ("registry.server.deleted", "registry.server.toggled", "registry.server.updated")


async def start(bus: Bus, runtime: Runtime) -> None:
    """Follow registry server events on every replica (each holds its own processes)."""

    async def on_server_changed(event: Event) -> None:
        name = event.data.get("server")
        if not isinstance(name, str):
            return
        changed = event.data.get("changed") or []
        if event.type == "registry.server.updated" and changed == ["tools"]:
            return  # a tool refresh changes nothing the process runs with
        if event.type == "registry.server.status":
            return
        runtime.forget_spec(name)
        if event.type == "registry.server.toggled" and event.data.get("enabled"):
            return
        if event.type in STOP_ON and runtime.manager.running(name):
            await runtime.manager.stop(name, graceful=True, timeout=5.0)

    await bus.follow(subjects.REGISTRY_SERVER_EVENTS, on_server_changed)
