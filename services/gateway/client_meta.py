"""What of a client's `_meta` travels upstream: not the 2026-07-28 envelope (the gateway sends its
own), except the input capabilities a 2026-07-28 client declared, so that the upstream asks it
only for what it can answer (SEP-2322: sampling, elicitation, roots)."""

from __future__ import annotations

from typing import Any

from mcp_types import CLIENT_CAPABILITIES_META_KEY

ENVELOPE_PREFIX = "io.modelcontextprotocol/"
INPUT_CAPABILITIES = ("sampling", "elicitation", "roots")  # what an upstream may ask a client


def upstream_meta(meta: Any, capabilities: Any = None) -> dict[str, Any]:
    """The client's `_meta` without the envelope; with the client's `capabilities` (2026-07-28
    clients), those of them an `input_required` result may ask for."""
    out = (
        {k: v for k, v in meta.items() if not k.startswith(ENVELOPE_PREFIX)}
        if isinstance(meta, dict)
        else {}
    )
    if isinstance(capabilities, dict):
        carried = {k: capabilities[k] for k in INPUT_CAPABILITIES if k in capabilities}
        out[CLIENT_CAPABILITIES_META_KEY] = carried
    return out


def without_capabilities(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """`params` without declared capabilities in `_meta`: for an upstream of an earlier revision,
    which learnt the capabilities at its handshake."""
    meta = params.get("_meta") if params else None
    if not isinstance(meta, dict) or CLIENT_CAPABILITIES_META_KEY not in meta:
        return params
    assert params is not None
    rest = {k: v for k, v in meta.items() if k != CLIENT_CAPABILITIES_META_KEY}
    return {**params, "_meta": rest}
