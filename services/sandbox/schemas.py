"""Request models of the sandbox API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common.errors import Unprocessable
from services.sandbox import allowlist


class StopBody(BaseModel):
    """POST .../stop."""

    model_config = ConfigDict(extra="forbid")
    graceful: bool = True
    timeout: float = Field(default=10.0, gt=0, le=300)


class HostsBody(BaseModel):
    """POST .../allowed-hosts: host names, `*.domain` wildcards, host:port, IP addresses."""

    model_config = ConfigDict(extra="forbid")
    hosts: list[str] = Field(min_length=1, max_length=100)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        """Each in canonical form; wildcards of everything are not hosts."""
        out = []
        for host in value:
            try:
                out.append(allowlist.normalise(host))
            except ValueError as exc:
                raise ValueError(f"{host.strip()[:80]!r} {exc}") from None
        return list(dict.fromkeys(out))


class HostsRemoval(BaseModel):
    """DELETE .../allowed-hosts: entries as stored (a malformed legacy one included)."""

    model_config = ConfigDict(extra="forbid")
    hosts: list[str] = Field(min_length=1, max_length=100)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        """Canonical form where an entry parses, else the trimmed lowercase text."""
        out = []
        for host in value:
            text = host.strip().lower()
            if not text or len(text) > 300 or any(ord(c) < 33 for c in text):
                raise ValueError(f"{host[:80]!r} is not an allowlist entry")
            try:
                out.append(allowlist.normalise(text))
            except ValueError:
                out.append(text)
        return out


class LogsQuery(BaseModel):
    """GET .../logs."""

    model_config = ConfigDict(extra="ignore")
    level: str | None = Field(default=None, pattern="^(debug|info|warning|error)$")
    limit: int = Field(default=100, ge=1, le=2000)
    since: str | None = None
    follow: bool = False


def check_name(name: str) -> str:
    """A server name from a path, checked."""
    if not name or len(name) > 128:
        raise Unprocessable("Bad server name.", details={"fields": {"name": "1-128 characters"}})
    return name


MODULE_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
TOOL_NAME_RE = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"


class ToolCreate(BaseModel):
    """POST /tools."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=TOOL_NAME_RE)
    description: str = Field("", max_length=4000)
    code: str = Field(min_length=1, max_length=256 * 1024)
    input_schema: dict = Field(default_factory=lambda: {"type": "object", "properties": {}})
    # MCPBox: the code server (a registry server of transport `code`) the tool is served under
    server: str = Field("code", pattern=TOOL_NAME_RE)


class ToolUpdate(BaseModel):
    """PATCH /tools/{id}: any of description, code, input_schema."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(None, max_length=4000)
    code: str | None = Field(None, min_length=1, max_length=256 * 1024)
    input_schema: dict | None = None
    note: str | None = Field(None, max_length=500)


class CodeCheck(BaseModel):
    """POST /tools/validate-code and /tools/test-code."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=256 * 1024)
    input_schema: dict = Field(default_factory=lambda: {"type": "object", "properties": {}})
    args: dict = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, le=600)


class Decision(BaseModel):
    """POST /approvals/{kind}/{id}/action."""

    model_config = ConfigDict(extra="forbid")
    action: str = Field(pattern="^(approve|reject)$")
    reason: str | None = Field(None, max_length=2000)


class Revoke(BaseModel):
    """POST /approvals/{kind}/{id}/revoke."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)


class ModuleRequest(BaseModel):
    """POST /approvals/modules: ask for a module to be allowed."""

    model_config = ConfigDict(extra="forbid")
    module: str = Field(pattern=MODULE_RE)
    reason: str | None = Field(None, max_length=2000)


class ModulesPatch(BaseModel):
    """PATCH /modules."""

    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("add", "remove")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        """Package names only."""
        import re

        for name in value:
            if not re.match(MODULE_RE, name):
                raise ValueError(f"{name!r} is not a module name")
        return value
