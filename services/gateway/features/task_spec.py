"""What the two revisions say about tasks: the extension, its methods and declaration, errors.

See `tasks.py` for how the gateway routes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_types import CLIENT_CAPABILITIES_META_KEY

from services.gateway.jsonrpc import (
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    RpcFault,
)

if TYPE_CHECKING:
    from services.gateway.call_context import CallContext

EXTENSION = "io.modelcontextprotocol/tasks"
SESSION_VERSION = "2025-11-25"  # the one handshake-era revision with tasks in its core
MODERN_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
SESSION_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"})
METHODS = MODERN_METHODS | SESSION_METHODS
SESSION_CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
RELATED_TASK = "io.modelcontextprotocol/related-task"
STATUS = "notifications/tasks/status"


def declared(params: dict[str, Any]) -> Any:
    """The client's settings object for the extension, or None when it did not declare it."""
    meta = params.get("_meta")
    caps = meta.get(CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    exts = caps.get("extensions") if isinstance(caps, dict) else None
    return exts.get(EXTENSION) if isinstance(exts, dict) else None


def declare(forwarded: dict[str, Any], settings: Any) -> None:
    """Declare the extension to the upstream for this one request."""
    meta = dict(forwarded.get("_meta") or {})
    caps = meta.get(CLIENT_CAPABILITIES_META_KEY)
    caps = dict(caps) if isinstance(caps, dict) else {}
    caps["extensions"] = {EXTENSION: settings}
    meta[CLIENT_CAPABILITIES_META_KEY] = caps
    forwarded["_meta"] = meta


def in_session(ctx: CallContext) -> bool:
    """A 2025-11-25 session: its client may augment requests with tasks."""
    return not ctx.modern and ctx.protocol == SESSION_VERSION


def missing_capability() -> RpcFault:
    """-32021: the request needs the Tasks extension declared (2026-07-28)."""
    return RpcFault(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        "Missing required client capability: the Tasks extension.",
        {"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
    )


def cannot_run_as_task(name: str) -> RpcFault:
    """-32601: the spec's answer to a task-augmented call of a tool without task support."""
    return RpcFault(METHOD_NOT_FOUND, f"The tool {name} cannot run as a task.", {"tool": name})


def plain_meta(meta: Any) -> dict[str, Any]:
    """The client's `_meta` minus protocol keys (related-task is ignored on tasks/* requests)."""
    if not isinstance(meta, dict):
        return {}
    return {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol/")}
