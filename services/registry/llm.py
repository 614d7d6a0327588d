"""Server descriptions written by an OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from libs.common.errors import Conflict, Unprocessable, UpstreamError, UpstreamTimeout
from libs.common.outbound import Guard, read_capped
from libs.common.ssrf import IPNetwork, SsrfRefused

MAX_ANSWER_BYTES = 1024 * 1024

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


async def describe(
    cfg: dict[str, Any], server: Any, tools: list[Any], timeout: float, allow: list[IPNetwork]
) -> str:
    """Ask the configured LLM for a description, through the outbound guard.

    `allow` holds the CIDRs the SSRF rules let through, e.g. a model served on the local
    network."""
    base, model, key = configured(cfg)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": messages(server, tools), "temperature": 0.2}
    url = f"{base}/chat/completions"
    guard = Guard(allow)
    try:
        await guard.check_url(url)
    except SsrfRefused as exc:
        raise Unprocessable(
            "The LLM URL is not allowed.", details={"fields": {"llm_base_url": f"the URL {exc}"}}
        ) from None
    try:
        async with guard.session(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    raise UpstreamError(
                        f"The LLM answered HTTP {resp.status}.", details={"status": resp.status}
                    )
                doc = orjson.loads(await read_capped(resp, MAX_ANSWER_BYTES))
    except orjson.JSONDecodeError:
        raise UpstreamError("The LLM answered with something that is not JSON.") from None
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
