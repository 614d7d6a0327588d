"""Settings read once from the environment into frozen dataclasses; errors name the variable."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from libs.common import log

T = TypeVar("T", bound="Settings")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# JetStream keeps at most five copies of a stream (one per cluster node)
MIN_REPLICAS, MAX_REPLICAS = 1, 5


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


def env(
    name: str,
    default: Any = dataclasses.MISSING,
    *,
    secret: bool = False,
    per_service: bool = False,
    aliases: tuple[str, ...] = (),
) -> Any:
    """Declare a settings field read from the variable `name` (else an older name in `aliases`).

    With `per_service`, it is read from `<SERVICE>_<name>` first (each service its own database
    role, its own NATS user)."""
    metadata: dict[str, Any] = {"env": name, "per_service": per_service, "aliases": aliases}
    kwargs: dict[str, Any] = {"metadata": metadata, "repr": not secret}
    if default is dataclasses.MISSING:
        # required: a placeholder default keeps field order free; from_env insists on a value
        kwargs["metadata"] = {**metadata, "required": True}
        kwargs["default"] = None
    elif isinstance(default, (list, dict, set)):
        kwargs["default_factory"] = lambda: type(default)(default)
    else:
        kwargs["default"] = default
    return field(**kwargs)


@dataclass(frozen=True)
class Settings:
    """What every service reads; subclasses add `<SERVICE>_*` fields."""

    service: ClassVar[str] = "switchboard"
    default_port: ClassVar[int] = 8000

    # AUTH_DATABASE_URL, REGISTRY_DATABASE_URL, ...: the service's own role; else DATABASE_URL
    database_url: str = env(
        "DATABASE_URL", "postgresql://127.0.0.1:5432/switchboard", secret=True, per_service=True
    )
    nats_url: str = env("NATS_URL", "nats://127.0.0.1:4222")
    # the service's NATS user (AUTH_NATS_USER, ...; else NATS_USER); empty: no credentials
    nats_user: str = env("NATS_USER", "", per_service=True)
    nats_password: str = env("NATS_PASSWORD", "", secret=True, per_service=True)
    # copies of each JetStream stream and KV bucket the services create: 1 on one node, 3 on a
    # three-node cluster (overlays/prod); a stream found with fewer is raised to it
    nats_stream_replicas: int = env("NATS_STREAM_REPLICAS", 1)
    # the EVENTS stream's byte limit (oldest events dropped beyond it); 0: only its age limits it
    nats_stream_max_bytes: int = env("NATS_STREAM_MAX_BYTES", 0)
    log_level: str = env("LOG_LEVEL", "info")
    # levels of named loggers over LOG_LEVEL: `access=warning,registry.health=debug` (log.py)
    log_levels: str = env("LOG_LEVELS", "")
    namespace: str = env("SWITCHBOARD_NAMESPACE", "")
    version: str = env("SWITCHBOARD_VERSION", "0.1.0")
    instance: str = env("SWITCHBOARD_INSTANCE", "")
    heartbeat_s: float = env("SWITCHBOARD_HEARTBEAT_S", 5.0)
    max_body_bytes: int = env("SWITCHBOARD_MAX_BODY_BYTES", 4 * 1024 * 1024)
    db_pool_max: int = env("SWITCHBOARD_DB_POOL_MAX", 10)
    drain_s: float = env("SWITCHBOARD_DRAIN_S", 10.0)
    # idle keep-alive of client connections: longer than nginx's upstream keepalive_timeout
    # (60 s), so nginx closes an idle connection first and never sends on one being closed
    keepalive_s: int = env("SWITCHBOARD_KEEPALIVE_S", 75)
    # where clients reach the platform (nginx): OAuth issuer, the gateway's resource URL
    public_url: str = env("SWITCHBOARD_PUBLIC_URL", "http://localhost:8080")
    # browser cookies: Secure and named `__Host-…`; false only for plain-http development
    # (`make run`), where they are plain `sb_session` / `sb_csrf` (docs/AUTH.md)
    cookie_secure: bool = env("SWITCHBOARD_COOKIE_SECURE", True, aliases=("AUTH_COOKIE_SECURE",))
    # tracing (libs/common/tracing.py): off unless one of the standard OTLP endpoints is set
    otlp_endpoint: str = env("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    otlp_traces_endpoint: str = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
    otel_sdk_disabled: bool = env("OTEL_SDK_DISABLED", False)
    trace_sample_ratio: float = env("SWITCHBOARD_TRACE_SAMPLE_RATIO", 1.0)  # of root spans
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        """Check the platform values that have a range (subclasses call this first)."""
        if not MIN_REPLICAS <= self.nats_stream_replicas <= MAX_REPLICAS:
            raise SettingsError(
                f"NATS_STREAM_REPLICAS must be from {MIN_REPLICAS} to {MAX_REPLICAS}"
                f" (got {self.nats_stream_replicas})"
            )
        for variable, check in (("LOG_LEVEL", log.parse_level), ("LOG_LEVELS", log.parse_levels)):
            try:
                check(getattr(self, variable.lower()))
            except ValueError as exc:
                raise SettingsError(f"{variable}: {exc}") from None
        if self.nats_stream_max_bytes < 0:
            raise SettingsError(
                f"NATS_STREAM_MAX_BYTES must be 0 (no limit) or more"
                f" (got {self.nats_stream_max_bytes})"
            )

    @classmethod
    def from_env(cls: type[T], environ: typing.Mapping[str, str] | None = None) -> T:
        """Read every field from `environ` (default: the process environment)."""
        source = os.environ if environ is None else environ
        prefix = cls.service.upper()
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            name = f.metadata.get("env") or f"{prefix}_{f.name.upper()}"
            if f.metadata.get("per_service") and f"{prefix}_{name}" in source:
                name = f"{prefix}_{name}"
            if name not in source:
                name = next((a for a in f.metadata.get("aliases", ()) if a in source), name)
            raw = source.get(name)
            if raw is None:
                if f.name == "port":
                    values["port"] = cls.default_port
                    continue
                if f.metadata.get("required"):
                    raise SettingsError(f"{name} is required but not set")
                continue
            values[f.name] = _convert(name, raw, hints[f.name])
        return cls(**values)


def _convert(name: str, raw: str, hint: Any) -> Any:
    """Turn the text of variable `name` into a value of type `hint`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw == "":
            return None
        return _convert(name, raw, args[0])
    if hint is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise SettingsError(f"{name} must be a boolean (got {raw!r})")
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer (got {raw!r})") from None
    if hint is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number (got {raw!r})") from None
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
