"""What the registry says about a hosted stdio server, as the sandbox runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServerSpec:
    """What the registry says about a stdio server (env decrypted, passed only to the process)."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float | None = None
    per_user: bool = False
    org: str | None = None

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> ServerSpec:
        """Build from a registry snapshot server view."""
        return cls(
            name=view["name"],
            command=view.get("command") or "",
            args=tuple(view.get("args") or ()),
            env={str(k): str(v) for k, v in (view.get("env") or {}).items()},
            timeout_s=view.get("timeout_s"),
            per_user=bool(view.get("per_user")),
            org=view.get("org"),
        )
