"""Request models of the sandbox API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common.errors import Unprocessable

HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-.*:[]")


class StopBody(BaseModel):
    """POST .../stop."""

    model_config = ConfigDict(extra="forbid")
    graceful: bool = True
    timeout: float = Field(default=10.0, gt=0, le=300)


class HostsBody(BaseModel):
    """POST/DELETE .../allowed-hosts."""

    model_config = ConfigDict(extra="forbid")
    hosts: list[str] = Field(min_length=1, max_length=100)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        """Lowercase host names, `*.domain` wildcards or host:port."""
        out = []
        for host in value:
            host = host.strip().lower()
            if not host or len(host) > 253 or not set(host) <= HOST_CHARS or "/" in host:
                raise ValueError(f"{host!r} is not a host name")
            out.append(host)
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
