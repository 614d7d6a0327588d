"""The npm packages the tests drive (tests/node): installed from the lock file, Node 22 checked."""

import shutil
import subprocess
import sys
from pathlib import Path

from libs.devstack import proc

PEERS_DIR = proc.ROOT / "tests" / "node"
NODE_MAJOR = 22  # the conformance suite needs fs.globSync (Node 22); the machine's node may be 20


def node_binary(peers: Path = PEERS_DIR) -> Path:
    """Node 22 from the npm package `node` in the peers' node_modules."""
    return peers / "node_modules" / "node" / "bin" / "node"


def install(peers: Path = PEERS_DIR) -> int:
    """`npm ci` the peers (installing Debian's npm when there is none) and check Node 22 runs."""
    if shutil.which("npm") is None:
        proc.apt_install("nodejs", "npm")
    print(f"devstack: installing the npm test peers into {peers}/node_modules", file=sys.stderr)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(peers)], cwd=peers
    )
    if done.returncode != 0:
        return done.returncode
    node = node_binary(peers)
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"devstack: {node} does not run: {exc}", file=sys.stderr)
        return 1
    if not version.startswith(f"v{NODE_MAJOR}."):
        print(f"devstack: {node} is {version}, not Node {NODE_MAJOR}", file=sys.stderr)
        return 1
    return 0
