"""The npm test peers (tests/node, pinned by its lock file, installed by `make test-peers`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from libs.devstack import peers

NODE_MODULES = peers.PEERS_DIR / "node_modules"
NODE22 = peers.node_binary()
SCOPE = NODE_MODULES / "@modelcontextprotocol"
TS_SDK = SCOPE / "sdk"
SERVER_EVERYTHING = SCOPE / "server-everything" / "dist" / "index.js"


def installed() -> Path:
    """NODE_MODULES, failing the test with the command to run when the peers are missing."""
    stamp = NODE_MODULES / ".installed"
    assert stamp.exists(), "the npm test peers are missing: run `make test-peers`"
    return NODE_MODULES


def system_node() -> str:
    """The machine's `node` (what hosted stdio servers find inside the sandbox, under /usr)."""
    found = shutil.which("node")
    assert found, "node is needed (Debian's nodejs)"
    return found
