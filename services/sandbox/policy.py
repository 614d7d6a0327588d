"""The security policy: default limits of code runs, network default, approvals, terminal."""

from __future__ import annotations

import time
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from services.sandbox import isolation
from services.sandbox.store import policy as policy_store

CACHE_S = 3.0


class Policy(BaseModel):
    """The stored policy document (every field has a safe default)."""

    model_config = ConfigDict(extra="forbid")

    memory_mb: int = Field(512, ge=32, le=16384)
    cpu_s: int = Field(10, ge=1, le=3600)
    timeout_s: float = Field(30.0, gt=0, le=600)
    nproc: int = Field(32, ge=4, le=1024)
    nofile: int = Field(128, ge=16, le=65536)
    fsize_mb: int = Field(16, ge=1, le=4096)
    network_default: Literal["deny", "ask"] = "ask"  # ask: a refusal opens an approval
    approvers: Literal["platform_admin", "org_admin"] = "platform_admin"
    require_tool_approval: bool = True
    terminal_enabled: bool = False
    allow_unisolated: bool = False
    accept_weak_isolation: bool = False  # see GET /status isolation.weak

    def limits(self) -> isolation.Limits:
        """The rlimits for code runs."""
        return isolation.Limits(self.memory_mb, self.cpu_s, self.nofile, self.nproc, self.fsize_mb)


class PolicyPatch(BaseModel):
    """PATCH /policy: any subset of the fields."""

    model_config = ConfigDict(extra="forbid")

    memory_mb: int | None = Field(None, ge=32, le=16384)
    cpu_s: int | None = Field(None, ge=1, le=3600)
    timeout_s: float | None = Field(None, gt=0, le=600)
    nproc: int | None = Field(None, ge=4, le=1024)
    nofile: int | None = Field(None, ge=16, le=65536)
    fsize_mb: int | None = Field(None, ge=1, le=4096)
    network_default: Literal["deny", "ask"] | None = None
    approvers: Literal["platform_admin", "org_admin"] | None = None
    require_tool_approval: bool | None = None
    terminal_enabled: bool | None = None
    allow_unisolated: bool | None = None
    accept_weak_isolation: bool | None = None


class PolicyCache:
    """The policy, read from Postgres at most every few seconds."""

    def __init__(self) -> None:
        self._value: Policy | None = None
        self._until = 0.0

    async def get(self, conn: asyncpg.Connection) -> Policy:
        """The current policy."""
        if self._value is not None and self._until > time.monotonic():
            return self._value
        doc = await policy_store.get_policy(conn)
        self._value = Policy.model_validate(doc or {})
        self._until = time.monotonic() + CACHE_S
        return self._value

    def set(self, value: Policy) -> None:
        """Remember a policy just written."""
        self._value = value
        self._until = time.monotonic() + CACHE_S


def merged(current: Policy, patch: PolicyPatch) -> dict[str, Any]:
    """The document after applying a patch."""
    return {**current.model_dump(), **patch.model_dump(exclude_none=True)}
