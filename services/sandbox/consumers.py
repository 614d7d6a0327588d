"""Events the sandbox follows: registry server changes drop cached specs and stop old processes."""

from __future__ import annotations

from libs.common import events as ev
from libs.common import subjects
from libs.common.bus import Bus
from libs.common.events import Event
from services.sandbox.runtime import Runtime

STOP_ON = (ev.SERVER_DELETED.name, ev.SERVER_TOGGLED.name, ev.SERVER_UPDATED.name)


async def start(bus: Bus, runtime: Runtime) -> None:
    """Follow registry server events on every replica (each holds its own processes)."""

    async def on_server_changed(event: Event) -> None:
        if event.type == ev.SERVER_STATUS.name or event.type not in ev.SERVER_EVENTS:
            return
        # ServerChanged, ServerToggled or ServerShared: each names its `server`
        change = ev.decode(event)
        if event.type == ev.SERVER_UPDATED.name and change.changed == ["tools"]:
            return  # a tool refresh changes nothing the process runs with
        runtime.forget_spec(change.server)
        if isinstance(change, ev.ServerToggled) and change.enabled:
            return
        if event.type in STOP_ON and runtime.manager.running(change.server):
            await runtime.manager.stop(change.server, graceful=True, timeout=5.0)

    await bus.follow(subjects.REGISTRY_SERVER_EVENTS, on_server_changed)
