"""Per-team concurrency caps: how many tool calls of one team may run at once on a replica.

A call counts against the team it runs for: the team of a `/mcp/{team}` endpoint, else the first
team (by name) whose grant lets the caller execute the tool. A platform admin calling without a
covering grant counts against no team. `GATEWAY_TEAM_MAX_CONCURRENCY` caps every team (0: no
cap) and `GATEWAY_TEAM_CONCURRENCY_OVERRIDES` (`team=n`, 0: unlimited) sets single teams. A call
beyond its team's cap is refused at once with -32029 (HTTP 429), not queued: a queue would hold
the client's request (and a worker) for as long as the team's slowest calls run. The counters
are in memory, so the cap holds per replica (N replicas admit up to N x cap).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from libs.common.authn import Principal, ServerRef
from services.gateway.jsonrpc import RATE_LIMITED, RpcFault


def parse_overrides(entries: tuple[str, ...]) -> dict[str, int]:
    """`team=n` entries to {team: n}; a malformed entry raises ValueError naming it."""
    out: dict[str, int] = {}
    for entry in entries:
        team, sep, value = entry.strip().rpartition("=")
        if not sep or not team.strip() or not (value.strip().isascii() and value.strip().isdigit()):
            raise ValueError(f"GATEWAY_TEAM_CONCURRENCY_OVERRIDES entry {entry!r} is not team=n")
        out[team.strip()] = int(value)
    return out


def team_of(principal: Principal, server: ServerRef, tool: str) -> str | None:
    """The team a call runs for: the first team (by name) whose grant covers executing it."""
    teams = sorted(g.team for g in principal.grants if g.covers("execute", server, tool))
    return teams[0] if teams else None


class TeamLimits:
    """In-flight calls per team on this replica, against each team's cap."""

    def __init__(self, default: int, overrides: dict[str, int]) -> None:
        self.default = default
        self.overrides = overrides
        self.running: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether any team has a cap (else calls skip working out their team)."""
        return self.default > 0 or any(n > 0 for n in self.overrides.values())

    def cap(self, team: str) -> int:
        """The team's cap (0: none)."""
        return self.overrides.get(team, self.default)

    @contextmanager
    def slot(self, team: str | None) -> Iterator[None]:
        """Hold one of the team's slots for the call's duration; -32029 when none is free."""
        limit = self.cap(team) if team is not None else 0
        if team is None or limit <= 0:
            yield
            return
        held = self.running.get(team, 0)
        if held >= limit:
            raise RpcFault(
                RATE_LIMITED,
                f"Team {team!r} already runs {held} calls at once; its limit is {limit}.",
                {"team": team, "limit": limit, "reason": "team_concurrency"},
            )
        self.running[team] = held + 1
        try:
            yield
        finally:
            left = self.running[team] - 1
            if left:
                self.running[team] = left
            else:
                del self.running[team]
