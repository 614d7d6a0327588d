"""Secrets the services require, generated for local stacks (the caller's environment wins)."""

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

GENERATORS: dict[str, Callable[[], str]] = {
    # AES-GCM master key for upstream secrets: base64 of 32 bytes.
    "REGISTRY_MASTER_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    # encrypts auth's JWT signing keys at rest
    "AUTH_KEY_ENCRYPTION_SECRET": lambda: secrets.token_urlsafe(32),
}


def read(path: Path) -> dict[str, str]:
    """The `KEY=value` lines of path ({} when it does not exist)."""
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                stored[key.strip()] = value.strip()
    return stored


def write(path: Path, values: dict[str, str]) -> None:
    """Write `KEY=value` lines to path, readable by its owner only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def load(path: Path | None = None) -> dict[str, str]:
    """Return every required secret: from os.environ, else from path (created once), else new."""
    stored = read(path) if path is not None else {}
    values = {}
    for key, generate in GENERATORS.items():
        values[key] = os.environ.get(key) or stored.get(key) or generate()
    missing = {k: v for k, v in values.items() if k not in stored and not os.environ.get(k)}
    if path is not None and missing:
        write(path, {**stored, **missing})
    return values
