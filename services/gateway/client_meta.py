"""What of a client's `_meta` travels upstream.

Not the 2026-07-28 envelope, which the gateway sends for itself, except what a 2026-07-28 client
asks for this one request: the log level it wants messages at, and the input capabilities it
declared, so that the upstream asks it only for what it can answer (SEP-2322: sampling,
elicitation, roots). Upstreams of earlier revisions get none of the envelope: they learnt their
client at the handshake."""

from __future__ import annotations

from typing import Any

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)

ENVELOPE_PREFIX = "io.modelcontextprotocol/"
ENVELOPE = frozenset(
    {
        PROTOCOL_VERSION_META_KEY,
        CLIENT_INFO_META_KEY,
        CLIENT_CAPABILITIES_META_KEY,
        LOG_LEVEL_META_KEY,
    }
)
INPUT_CAPABILITIES = ("sampling", "elicitation", "roots")  # what an upstream may ask a client


def upstream_meta(meta: Any, capabilities: Any = None) -> dict[str, Any]:
    """The client's `_meta` without the envelope but its log level.

    With the client's `capabilities` (2026-07-28 clients), those of them an `input_required`
    result may ask for."""
    out = (
        {
            k: v
            for k, v in meta.items()
            if not k.startswith(ENVELOPE_PREFIX) or k == LOG_LEVEL_META_KEY
        }
        if isinstance(meta, dict)
        else {}
    )
    if isinstance(capabilities, dict):
        carried = {k: capabilities[k] for k in INPUT_CAPABILITIES if k in capabilities}
        out[CLIENT_CAPABILITIES_META_KEY] = carried
    return out


def without_envelope(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """`params` without 2026-07-28 envelope keys in `_meta`, for an earlier-revision upstream."""
    meta = params.get("_meta") if params else None
    if not isinstance(meta, dict) or ENVELOPE.isdisjoint(meta):
        return params
    assert params is not None
    rest = {k: v for k, v in meta.items() if k not in ENVELOPE}
    return {**params, "_meta": rest}
