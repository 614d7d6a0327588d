"""Registry events as the registry sends them, for the audit tests to publish."""

from __future__ import annotations

import dataclasses
import uuid

from libs.common import events as ev
from libs.common.events import Event


def server_status(
    server: str, status: str, *, org: str | None = None, time: str | None = None
) -> Event:
    """A registry.server.status event: `server` is now `status` (at `time`, when given)."""
    payload = ev.ServerStatusChanged(
        server=server, server_id=str(uuid.uuid4()), version=1, status=status, previous="unknown"
    )
    event = ev.SERVER_STATUS.event(payload, source="registry", org=org)
    return dataclasses.replace(event, time=time) if time is not None else event


def setting(key: str, value: object) -> Event:
    """A registry.settings.updated event: the admin setting `key` is now `value`."""
    return ev.SETTINGS_UPDATED.event(ev.SettingsUpdated(key, 1, value), source="registry")
