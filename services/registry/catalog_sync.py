"""External catalogs: the official MCP registry's server list and ModelScope's MCP list."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from libs.common.errors import UpstreamError, UpstreamTimeout
from libs.common.outbound import Guard, read_capped
from libs.common.ssrf import IPNetwork
from services.registry.transfer import slug

MAX_PAGES = 20
MAX_PAGE_BYTES = 16 * 1024 * 1024


def detect(doc: Any) -> str:
    """mcp-registry (`servers` list) or modelscope (`Data.mcp_server_list`)."""
    if isinstance(doc, dict) and isinstance((doc.get("Data") or {}).get("mcp_server_list"), list):
        return "modelscope"
    if isinstance(doc, dict) and isinstance(doc.get("servers"), list):
        return "mcp-registry"
    raise UpstreamError("The catalog answered with an unknown format.")


def from_mcp_registry(entry: dict[str, Any]) -> dict[str, Any] | None:
    """One official-registry entry (`{"server": {...}}` or bare) to server fields."""
    s = entry.get("server", entry) if isinstance(entry, dict) else None
    if not isinstance(s, dict) or not s.get("name"):
        return None
    out: dict[str, Any] = {
        "name": slug(str(s["name"]).rsplit("/", 1)[-1]),
        "display_name": s.get("title") or s["name"],
        "description": (s.get("description") or "")[:4000],
        "repo_url": (s.get("repository") or {}).get("url"),
        "enabled": False,
        "tags": ["mcp-registry"],
    }
    remotes = [r for r in s.get("remotes") or [] if isinstance(r, dict) and r.get("url")]
    remote = next((r for r in remotes if r.get("type") == "streamable-http"), None) or (
        remotes[0] if remotes else None
    )
    packages = [p for p in s.get("packages") or [] if isinstance(p, dict)]
    if remote:
        kind = remote.get("type")
        out.update(transport="sse" if kind == "sse" else "streamable-http", url=remote["url"])
    elif packages:
        pkg = packages[0]
        ident = pkg.get("identifier") or pkg.get("name")
        runner = {
            "npm": ("npx", ["-y", ident]),
            "pypi": ("uvx", [ident]),
            "oci": ("docker", ["run", "-i", "--rm", ident]),
        }
        command, args = runner.get(
            pkg.get("registryType") or pkg.get("registry_name") or "npm", ("npx", ["-y", ident])
        )
        out.update(transport="stdio", command=command, args=args)
    else:
        return None
    return out


def from_modelscope(entry: dict[str, Any]) -> dict[str, Any] | None:
    """One ModelScope MCP entry to server fields (its first mcpServers config)."""
    if not isinstance(entry, dict) or not (entry.get("id") or entry.get("name")):
        return None
    name = slug(str(entry.get("id") or entry["name"]).rsplit("/", 1)[-1])
    out: dict[str, Any] = {
        "name": name,
        "display_name": entry.get("chinese_name") or entry.get("name") or name,
        "description": (entry.get("description") or "")[:4000],
        "enabled": False,
        "tags": ["modelscope"],
    }
    configs = entry.get("server_config") or []
    for config in configs if isinstance(configs, list) else []:
        for spec in ((config or {}).get("mcpServers") or {}).values():
            if isinstance(spec, dict) and spec.get("command"):
                return {
                    **out,
                    "transport": "stdio",
                    "command": spec["command"],
                    "args": spec.get("args") or [],
                }
            if isinstance(spec, dict) and spec.get("url"):
                kind = "sse" if spec.get("type") == "sse" else "streamable-http"
                return {**out, "transport": kind, "url": spec["url"]}
    return None


async def fetch(
    url: str, token: str | None, fmt: str, allow: list[IPNetwork], timeout: float
) -> tuple[str, list[dict[str, Any]]]:
    """Every catalog entry (following the registry's cursor), converted to server fields.

    Fetched through the outbound guard (raises SsrfRefused before connecting to a refused
    host)."""
    guard = Guard(allow)
    await guard.check_url(url)
    session = guard.session(timeout=aiohttp.ClientTimeout(total=timeout))
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    try:
        async with session as http:
            for _ in range(MAX_PAGES):
                params = {"cursor": cursor} if cursor else {}
                async with http.get(url, headers=headers, params=params) as resp:
                    if resp.status != 200:
                        raise UpstreamError(
                            f"The catalog answered HTTP {resp.status}.",
                            details={"status": resp.status},
                        )
                    doc = orjson.loads(await read_capped(resp, MAX_PAGE_BYTES))
                kind = detect(doc) if fmt == "auto" else fmt
                if kind == "modelscope":
                    items += [x for x in map(from_modelscope, doc["Data"]["mcp_server_list"]) if x]
                    return kind, items
                items += [x for x in map(from_mcp_registry, doc.get("servers") or []) if x]
                cursor = (doc.get("metadata") or {}).get("nextCursor") or (
                    doc.get("metadata") or {}
                ).get("next_cursor")
                if not cursor:
                    return kind, items
    except TimeoutError:
        raise UpstreamTimeout("The catalog did not answer in time.") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(
            "The catalog could not be reached.", details={"error": type(exc).__name__}
        ) from None
    except ValueError:
        raise UpstreamError("The catalog answered with something that is not JSON.") from None
    return fmt, items
