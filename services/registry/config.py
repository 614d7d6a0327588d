"""The admin config: validated writes (secrets sealed) with SETTINGS_UPDATED, masked reads."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import events as ev
from libs.common.errors import NotFound, Unprocessable
from services.registry import config_keys
from services.registry.context import SCHEMA, Registry
from services.registry.crypto import MASK
from services.registry.store import config as config_store
from services.registry.store import servers as servers_store


async def masked(reg: Registry, conn: asyncpg.Connection) -> dict[str, Any]:
    """Every setting with secret values masked (MASK when set, None when not)."""
    cfg = await reg.config(conn)
    return {
        name: ((MASK if cfg[name] else None) if key.secret else cfg[name])
        for name, key in config_keys.KEYS.items()
    }


async def put(
    reg: Registry, conn: asyncpg.Connection, name: str, value: Any, actor: str
) -> dict[str, Any]:
    """Validate and store one setting; returns {"key", "value"} (masked when secret)."""
    key = config_keys.KEYS.get(name)
    if key is None:
        raise NotFound(
            f"There is no setting {name!r}.",
            details={"key": name, "known": sorted(config_keys.KEYS)},
        )
    try:
        checked = key.check(value)
    except ValueError as exc:
        raise Unprocessable(
            "The setting value is invalid.", details={"fields": {"value": str(exc)}}
        ) from None
    sealed = (
        reg.box.seal(checked, f"setting:{name}") if key.secret and checked is not None else None
    )
    await config_store.put_entry(conn, name, checked, sealed, actor)
    version = await servers_store.next_version(conn)
    payload = ev.SettingsUpdated(name, version, None if key.secret else checked, key.secret)
    await reg.emit(conn, ev.SETTINGS_UPDATED.event(payload, source=SCHEMA, actor=actor))
    shown = (MASK if checked else None) if key.secret else checked
    return {"key": name, "value": shown}


def expand(values: dict[str, Any]) -> dict[str, Any]:
    """Several settings as given: an smtp value's password becomes the secret `smtp_password`."""
    out = dict(values)
    if "smtp" in out:
        out["smtp"], password = config_keys.smtp_password(out["smtp"])
        if password is not ...:
            out.setdefault("smtp_password", password)
    return out


async def put_many(
    reg: Registry, conn: asyncpg.Connection, values: dict[str, Any], actor: str
) -> dict[str, Any]:
    """Validate every setting first (422 naming each bad key), then store all of them.

    In the caller's transaction; answers {"settings": {key: value (masked when secret)}}."""
    expanded = expand(values)
    problems: dict[str, str] = {}
    for name, value in expanded.items():
        key = config_keys.KEYS.get(name)
        if key is None:
            problems[name] = "unknown setting"
            continue
        try:
            key.check(value)
        except ValueError as exc:
            problems[name] = str(exc)
    if problems:
        raise Unprocessable("Some settings are invalid.", details={"fields": problems})
    stored = {}
    for name, value in expanded.items():
        stored[name] = (await put(reg, conn, name, value, actor))["value"]
    return {"settings": stored}
