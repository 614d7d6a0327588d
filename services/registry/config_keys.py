"""The keys of the admin config: documented, validated, their defaults and which are secret.

Two kinds of settings, two names: `settings.py` (`RegistrySettings`) is the environment, read
once at start; the *config* (`config.py`, `config_keys.py`, `store/config.py`, `routes/config.py`)
is what platform admins edit at run time through /api/v1/settings and Postgres stores.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from libs.common import plans, ssrf
from services.registry.settings import RegistrySettings


@dataclass(frozen=True)
class Key:
    """One config key: its check, its default, whether it is secret or routing-relevant."""

    name: str
    check: Callable[[Any], Any]
    default: Any = None
    secret: bool = False
    routing: bool = False  # part of the snapshot the gateway receives
    doc: str = ""


def _choice(*options: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return check


def _url_or_null(value: Any) -> Any:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("must be an http(s) URL or null")
    if not urlsplit(value).hostname:
        raise ValueError("must have a host")
    return value


def _text(max_len: int, nullable: bool = True) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or len(value) > max_len:
            raise ValueError(f"must be a string of at most {max_len} characters")
        return value

    return check


def _separator(value: Any) -> Any:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,4}", value):
        raise ValueError("must be 1 to 4 characters from letters, digits, _ . -")
    return value


def _cidrs(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of CIDR strings")
    return [str(n) for n in ssrf.parse_networks(value)]


def _number(lo: float, hi: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ValueError(f"must be a number from {lo:g} to {hi:g}")
        return value

    return check


CATALOG_GIT_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")


def _hosts(value: Any) -> Any:
    host = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
    if not isinstance(value, list) or not all(
        isinstance(v, str) and len(v) <= 253 and host.match(v.lower()) for v in value
    ):
        raise ValueError("must be a list of host names")
    return [v.lower() for v in value]


KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key(
            "exposure_mode",
            _choice("all", "progressive"),
            "all",
            routing=True,
            doc="all: every tool listed; progressive: search/describe/call meta-tools",
        ),
        Key(
            "tool_name_separator",
            _separator,
            "__",
            routing=True,
            doc="joins server and tool names in the gateway",
        ),
        Key(
            "audit_arguments",
            _choice("none", "keys", "full"),
            "keys",
            routing=True,
            doc="how much of tool arguments the audit trail keeps",
        ),
        Key(
            "new_tool_policy",
            _choice("auto_approve", "quarantine"),
            "quarantine",
            doc="what happens to tools that appear on an already discovered server "
            "(quarantine: held until approved)",
        ),
        Key(
            "ssrf_allowlist",
            _cidrs,
            None,
            routing=True,  # the gateway connects to what the registry let register
            doc="CIDRs upstream URLs may point into",
        ),
        Key("health_interval_s", _number(1, 86400), None, doc="seconds between health checks"),
        Key("llm_base_url", _url_or_null, None, doc="OpenAI-compatible API base URL"),
        Key("llm_api_key", _text(4096), None, secret=True, doc="API key of the LLM endpoint"),
        Key("llm_model", _text(200), None, doc="model for description generation"),
        Key("catalog_sync_url", _url_or_null, None, doc="external catalog to sync servers from"),
        Key("catalog_sync_token", _text(4096), None, secret=True, doc="bearer token for it"),
        Key(
            "catalog_sync_format",
            _choice("auto", "mcp-registry", "modelscope"),
            "auto",
            doc="format of the external catalog",
        ),
        Key("modelscope_token", _text(4096), None, secret=True, doc="MCPHubs alias of the token"),
        Key(
            "catalog_git_hosts",
            _hosts,
            list(CATALOG_GIT_HOSTS),
            doc="hosts the catalog clones git repositories from (https only)",
        ),
        Key(
            "plan_limits",
            plans.check_overrides,
            None,
            doc='per-plan overrides of libs/common/plans.py limits, e.g. {"pro": {"seats": 20}}'
            " (the registry's private MCPs and scans per month)",
        ),
        Key("webhook_github_secret", _text(4096), None, secret=True, doc="GitHub webhook secret"),
        Key("webhook_gitlab_token", _text(4096), None, secret=True, doc="GitLab webhook token"),
        Key("webhook_bitbucket_secret", _text(4096), None, secret=True, doc="Bitbucket secret"),
        Key("stripe_webhook_secret", _text(4096), None, secret=True, doc="Stripe whsec_ secret"),
    ]
}


HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
TLS_MODES = ("none", "starttls", "tls")
SMTP_FIELDS = {"host", "port", "tls", "secure", "from", "username", "auth", "password"}


def smtp_password(value: Any) -> tuple[Any, Any]:
    """Split an smtp value into (value without the password, the password or ...).

    The password (`password`, or the mcphub seed's `auth.pass`) is kept apart, sealed as the
    secret key `smtp_password`; `...` means none was given."""
    if not isinstance(value, dict):
        return value, ...
    rest = dict(value)
    password = rest.pop("password", ...)
    if isinstance(rest.get("auth"), dict):
        auth = dict(rest["auth"])
        if "pass" in auth:
            password = auth.pop("pass")
        rest["auth"] = auth
    return rest, password


def _smtp(value: Any) -> Any:
    """host, port, TLS mode (`tls`, or the seed's `secure`), from address, username."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("must be an object with host, port, tls, from, username")
    unknown = set(value) - SMTP_FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    host, port = value.get("host"), value.get("port", 587)
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise ValueError("host must be a host name or address")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be an integer from 1 to 65535")
    tls = value.get("tls")
    if tls is None:
        secure = value.get("secure", False)
        if not isinstance(secure, bool):
            raise ValueError("secure must be a boolean")
        tls = "tls" if secure else "starttls"  # nodemailer: secure false = upgrade by STARTTLS
    if tls not in TLS_MODES:
        raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}")
    auth = value.get("auth") or {}
    if not isinstance(auth, dict) or set(auth) - {"user"}:
        raise ValueError("auth must be an object with user (and pass)")
    username = value.get("username", auth.get("user"))
    if username is not None and (not isinstance(username, str) or len(username) > 320):
        raise ValueError("username must be a string of at most 320 characters")
    sender = value.get("from", username if username and "@" in username else None)
    if sender is not None and (not isinstance(sender, str) or not EMAIL_RE.match(sender)):
        raise ValueError("from must be an email address")
    return {
        "host": host,
        "port": port,
        "tls": tls,
        "secure": tls == "tls",
        "from": sender,
        "username": username,
    }


def _notifications(value: Any) -> Any:
    """The mcphub seed's targets: `email` (bool), `slack` (bool or webhook URL), `webhook`."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"email", "slack", "webhook"}:
        raise ValueError("must be an object with email, slack, webhook")
    email, slack = value.get("email", False), value.get("slack", False)
    if not isinstance(email, bool):
        raise ValueError("email must be a boolean")
    if not isinstance(slack, bool):
        try:
            slack = _url_or_null(slack)
        except ValueError:
            raise ValueError("slack must be a boolean or an http(s) URL") from None
    try:
        webhook = _url_or_null(value.get("webhook"))
    except ValueError:
        raise ValueError("webhook must be an http(s) URL or null") from None
    return {"email": email, "slack": slack, "webhook": webhook}


KEYS.update(
    {
        k.name: k
        for k in [
            Key("smtp", _smtp, None, doc="outgoing mail: host, port, tls, from, username"),
            Key("smtp_password", _text(1024), None, secret=True, doc="the SMTP password"),
            Key("notifications", _notifications, None, doc="email, slack, webhook targets"),
        ]
    }
)


def defaults(settings: RegistrySettings) -> dict[str, Any]:
    """Every key's default; some come from the service's environment."""
    out = {name: key.default for name, key in KEYS.items()}
    out["ssrf_allowlist"] = list(settings.ssrf_allowlist)
    out["new_tool_policy"] = settings.new_tool_policy
    out["health_interval_s"] = settings.health_interval_s
    return out
