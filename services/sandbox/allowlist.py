"""Egress allowlist entries (`host`, `*.domain`, `host:port`, `[v6]:port`) and what each matches.

A wildcard stands for the subdomains of a named domain of at least two labels: `*`, `*.*`,
`*.com` or `*:443` are not hosts. IP literals in any numeric form are kept in canonical form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.sandbox.addresses import parse_address

LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
MAX_HOST = 253


@dataclass(frozen=True)
class Entry:
    """One parsed allowlist entry."""

    host: str  # a name, an IP in canonical form, or the domain under `*.`
    port: int | None = None
    wildcard: bool = False
    address: bool = False

    def text(self) -> str:
        """The canonical text stored in the allowlist."""
        host = f"*.{self.host}" if self.wildcard else self.host
        if self.address and ":" in host:
            host = f"[{host}]" if self.port is not None else host
        return host if self.port is None else f"{host}:{self.port}"

    def matches(self, host: str, port: int) -> bool:
        """True when the destination (a canonical host) is what this entry allows."""
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def canonical_host(text: str) -> str:
    """A destination host as entries name it: lowercase, no trailing dot, IPs canonical."""
    addr = parse_address(text)
    if addr is not None:
        return str(addr)
    return text.strip().lower().rstrip(".").strip("[]")


def _split_port(text: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `[v6]`, a bare IPv6 address, or a host."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError("has text after the bracketed address")
        return f"[{host}]", _port(rest[1:]) if rest else None
    if text.count(":") == 1:
        host, raw = text.split(":")
        return host, _port(raw)
    return text, None


def _port(raw: str) -> int:
    """A port number 1-65535."""
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        raise ValueError("has an invalid port")
    return int(raw)


def parse_entry(text: str) -> Entry:
    """Parse one allowlist entry; ValueError says what is wrong with it."""
    raw = text.strip().lower()
    if not raw or len(raw) > MAX_HOST + 8:
        raise ValueError("is empty or too long")
    host, port = _split_port(raw)
    addr = parse_address(host)
    if addr is not None:
        return Entry(str(addr), port, address=True)
    host = host.rstrip(".")
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    labels = name.split(".")
    if not name or len(name) > MAX_HOST or not all(LABEL_RE.match(label) for label in labels):
        raise ValueError("is not a host name, `*.domain`, `host:port` or an IP address")
    if labels[-1].isascii() and labels[-1].isdigit():
        raise ValueError("is neither an IP address nor a host name")
    if wildcard and len(labels) < 2:
        raise ValueError("is a wildcard of a whole top-level domain, not a host")
    return Entry(name, port, wildcard=wildcard)


def normalise(text: str) -> str:
    """The canonical text of an entry; ValueError when it is not one."""
    return parse_entry(text).text()


def allows(entries: list[str], host: str, port: int) -> bool:
    """True when a stored entry allows host:port; entries that no longer parse allow nothing."""
    target = canonical_host(host)
    for text in entries:
        try:
            entry = parse_entry(text)
        except ValueError:
            continue
        if entry.matches(target, port):
            return True
    return False
