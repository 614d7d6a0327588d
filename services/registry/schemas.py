"""Request models of the registry API (validation gives 422 with field details)."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from libs.common import process_env

NAME_RE = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
Transport = Literal["stdio", "sse", "streamable-http"]


def _check_map(value: dict[str, str] | None, pattern: re.Pattern[str], what: str) -> Any:
    """Keys must match `pattern`; values are strings without control characters."""
    for key, val in (value or {}).items():
        if not pattern.match(key):
            raise ValueError(f"{key!r} is not a valid {what} name")
        if any(c in val for c in "\r\n\x00"):
            raise ValueError(f"the value of {key!r} contains a control character")
    return value


class ServerFields(BaseModel):
    """Fields shared by create and update; all optional here."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    transport: Transport | None = None
    url: str | None = Field(None, max_length=2048)
    headers: dict[str, str] | None = None
    command: str | None = Field(None, min_length=1, max_length=1024)
    args: list[str] | None = Field(None, max_length=200)
    env: dict[str, str] | None = None
    cwd: str | None = Field(None, max_length=1024)
    path: str | None = Field(None, pattern=NAME_RE)
    tags: list[str] | None = Field(None, max_length=50)
    enabled: bool | None = None
    owner_team: str | None = Field(None, max_length=200)
    timeout_s: float | None = Field(None, gt=0, le=600)
    max_concurrency: int | None = Field(None, ge=1, le=1000)
    per_user: bool | None = None
    # the gateway retries on readOnlyHint / idempotentHint only for trusted servers (org admin)
    trusted: bool | None = None
    health_interval_s: float | None = Field(None, ge=1, le=86400)
    license: str | None = Field(None, max_length=200)
    stars: int | None = Field(None, ge=0)
    language: str | None = Field(None, max_length=100)
    repo_url: str | None = Field(None, max_length=2048)
    is_python: bool | None = None
    # the catalog version the server runs: its id, or {"mcp": name, "version": visible_version}
    catalog_version: str | CatalogRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _seed_aliases(cls, data: Any) -> Any:
        """MCP Gateway Registry names: `proxy_pass_url` is `url`, `num_stars` is `stars`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, name in (("proxy_pass_url", "url"), ("num_stars", "stars")):
            if alias in data:
                value = data.pop(alias)
                if name in data and data[name] != value:
                    raise ValueError(f"{alias} and {name} differ; give one of them")
                data[name] = value
        return data

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> Any:
        return _check_map(value, HEADER_RE, "header")

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str] | None) -> Any:
        refused = process_env.refused_names(value or {})
        if refused:
            raise ValueError(f"{refused[0]!r} steers a loader or interpreter and may not be set")
        return _check_map(value, KEY_RE, "environment variable")

    @field_validator("trusted")
    @classmethod
    def _trusted(cls, value: bool | None) -> Any:
        if value is None:
            raise ValueError("must be true or false")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> Any:
        for tag in value or []:
            if not 1 <= len(tag) <= 64:
                raise ValueError("each tag must have 1 to 64 characters")
        return value


class ServerCreate(ServerFields):
    """POST /api/v1/servers."""

    name: str = Field(pattern=NAME_RE)
    transport: Transport
    org: str | None = Field(None, max_length=200)


class ServerUpdate(ServerFields):
    """PATCH (partial) or PUT (full) of /api/v1/servers/{name}."""


class ShareIn(BaseModel):
    """POST /api/v1/servers/{name}/shares: the org (id or slug) to share the server with."""

    model_config = ConfigDict(extra="forbid")
    org: str = Field(min_length=1, max_length=200)


class ToggleBody(BaseModel):
    """POST /api/v1/servers/{name}/toggle; no body flips the state."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None


class DisabledTools(BaseModel):
    """PUT …/disabled-tools: `{"tools": [...]}` or the mcphubs seed's `disabled_tools`."""

    model_config = ConfigDict(extra="forbid")
    tools: list[str] = Field(max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _seed_key(cls, data: Any) -> Any:
        """Accept the mcphubs seed's `disabled_tools` as the name of `tools` (one of the two)."""
        if isinstance(data, dict) and "disabled_tools" in data:
            if "tools" in data:
                raise ValueError("give either tools or disabled_tools, not both")
            data = {**data, "tools": data["disabled_tools"]}
            del data["disabled_tools"]
        return data


class ToolPatch(BaseModel):
    """PATCH /api/v1/servers/{name}/tools/{tool}."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool


class SecretValue(BaseModel):
    """PUT /api/v1/servers/{name}/secrets/{key}."""

    model_config = ConfigDict(extra="forbid")
    value: str = Field(max_length=16384)
    kind: Literal["env", "header"] = "env"


class SecretCreate(SecretValue):
    """POST /api/v1/servers/{name}/secrets (MCPBox: a placeholder when value is empty)."""

    key: str = Field(min_length=1, max_length=128)
    value: str = Field("", max_length=16384)


class SettingValue(BaseModel):
    """PUT /api/v1/settings/{key}."""

    model_config = ConfigDict(extra="forbid")
    value: Any


class ImportBody(BaseModel):
    """POST /api/v1/import when the config is wrapped with options."""

    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any]
    format: Literal["auto", "generic", "claude", "vscode", "mcphub"] = "auto"
    dry_run: bool = False
    on_conflict: Literal["fail", "skip", "overwrite"] = "fail"


class SyncBody(BaseModel):
    """POST /api/v1/servers/sync."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2048)
    format: Literal["auto", "mcp-registry", "modelscope"] = "auto"
    dry_run: bool = False


class SourceFields(BaseModel):
    """Fields of an external MCP source (MCPBox); all optional on update."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=NAME_RE)
    description: str | None = Field(None, max_length=4000)
    transport: Literal["sse", "streamable-http"] | None = None
    url: str | None = Field(None, min_length=1, max_length=2048)
    headers: dict[str, str] | None = None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> Any:
        return _check_map(value, HEADER_RE, "header")


class SourceCreate(SourceFields):
    """POST /api/v1/servers/{name}/sources."""

    name: str = Field(pattern=NAME_RE)
    url: str = Field(min_length=1, max_length=2048)
    transport: Literal["sse", "streamable-http"] = "streamable-http"


class SourceImport(BaseModel):
    """POST /api/v1/sources/{id}/import: the tools to import (all discovered when omitted)."""

    model_config = ConfigDict(extra="forbid")
    tools: list[str] | None = Field(None, max_length=1000)


class CatalogRef(BaseModel):
    """A catalog version by MCP name and visible version (a server's `catalog_version`)."""

    model_config = ConfigDict(extra="forbid")
    mcp: str = Field(min_length=1, max_length=200)
    version: str | None = Field(None, min_length=1, max_length=200)


PolicyAction = Literal["ALLOW", "DENY", "REQUIRE_APPROVAL"]
PolicyTarget = Literal["SCORE", "LICENSE", "NAME", "CONTROL"]


class PolicyFields(BaseModel):
    """Fields of an org policy; all optional here (PATCH)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=4000)
    action: PolicyAction | None = None
    target_type: PolicyTarget | None = None
    target_value: str | None = Field(None, min_length=1, max_length=1000)
    priority: int | None = Field(None, ge=0, le=1_000_000)
    enabled: bool | None = None


class PolicyCreate(PolicyFields):
    """POST /api/v1/orgs/{org}/policies, and PUT (the whole policy)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    action: PolicyAction
    target_type: PolicyTarget
    target_value: str = Field(min_length=1, max_length=1000)
    priority: int = Field(100, ge=0, le=1_000_000)
    enabled: bool = True


class ApprovalIn(BaseModel):
    """POST/DELETE /api/v1/orgs/{org}/policies/approvals: an MCP version by name."""

    model_config = ConfigDict(extra="forbid")
    mcp: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=2000)


class CiMcp(BaseModel):
    """One MCP of a CI evaluation: by name, at a visible version (default: the latest)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    version: str | None = Field(None, min_length=1, max_length=200)


class CiEvaluate(BaseModel):
    """POST /api/v1/ci/evaluate (the certification seed's request)."""

    model_config = ConfigDict(extra="forbid")
    org_id: str = Field(min_length=1, max_length=200)
    environment: str | None = Field(None, max_length=200)
    mcps: list[CiMcp] = Field(min_length=1, max_length=200)


class ReportCreate(BaseModel):
    """POST /api/v1/orgs/{org}/reports: a certification report of one snapshot."""

    model_config = ConfigDict(extra="forbid")
    snapshot_id: uuid.UUID
    format: Literal["PDF"] = "PDF"

    @field_validator("format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
