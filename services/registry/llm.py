"""Server descriptions written by an OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

from typing import Any

import aiohttp

from libs.common.errors import Conflict, UpstreamError, UpstreamTimeout

PROMPT = (
    "Write a one-paragraph description (at most 60 words) of an MCP server for a tool catalog. "
    "Say what it lets an AI assistant do. Plain text, no markdown."
)


def configured(cfg: dict[str, Any]) -> tuple[str, str, str | None]:
    """(base URL, model, key) or 409 when no LLM is configured."""
    if not cfg.get("llm_base_url") or not cfg.get("llm_model"):
        raise Conflict(
            "No LLM is configured: set the llm_base_url and llm_model settings.",
            details={"settings": ["llm_base_url", "llm_model"]},
        )
    return cfg["llm_base_url"].rstrip("/"), cfg["llm_model"], cfg.get("llm_api_key") or None


def messages(server: Any, tools: list[Any]) -> list[dict[str, str]]:
    """The chat messages describing a server and its tools."""
    lines = [f"Server: {server['name']} ({server['transport']})"]
    lines += [f"- {t['name']}: {(t['description'] or '')[:300]}" for t in tools[:50]]
    return [{"role": "system", "content": PROMPT}, {"role": "user", "content": "\n".join(lines)}]


async def describe(cfg: dict[str, Any], server: Any, tools: list[Any], timeout: float) -> str:
    """Ask the configured LLM for a description."""
    base, model, key = configured(cfg)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": messages(server, tools), "temperature": 0.2}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(f"{base}/chat/completions", json=body, headers=headers) as resp:
                if resp.status != 200:
                    raise UpstreamError(
                        f"The LLM answered HTTP {resp.status}.", details={"status": resp.status}
                    )
                doc = await resp.json(content_type=None)
    except TimeoutError:
        raise UpstreamTimeout("The LLM did not answer in time.") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(
            "The LLM could not be reached.", details={"error": type(exc).__name__}
        ) from None
    try:
        text = str(doc["choices"][0]["message"]["content"]).strip()
    except (KeyError, IndexError, TypeError):
        raise UpstreamError("The LLM's answer has no choices[0].message.content.") from None
    if not text:
        raise UpstreamError("The LLM answered with an empty description.")
    return text[:4000]
