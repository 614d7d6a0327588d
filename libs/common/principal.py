"""The Principal a credential yields, its grants, and the server reference grants apply to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROLE_ORDER = ("viewer", "member", "admin", "owner")
PERMISSIONS = ("read", "execute", "write")


@dataclass(frozen=True)
class ServerRef:
    """What every service knows of a server to decide who may reach it (docs/TENANCY.md)."""

    id: str
    name: str
    org: str | None = None  # the owning org's id; None: the platform owns it
    owner_team: str | None = None  # a team of `org`, by name
    shared_with: frozenset[str] = frozenset()  # orgs a platform admin shared it with

    def lent_to(self, org: str | None) -> bool:
        """True when `org` owns the server or was given it by a share."""
        return org is not None and (org == self.org or org in self.shared_with)


@dataclass(frozen=True)
class Grant:
    """A team's permissions on one server, optionally narrowed to listed tools.

    The server is bound by id, within the team's org."""

    team: str
    server: str  # the server's name, for display; the binding is `server_id`
    permissions: frozenset[str]
    tools: tuple[str, ...] | None = None
    server_id: str | None = None
    org: str | None = None  # the org of the team (or service token) holding the grant

    def applies_to(self, server: ServerRef) -> bool:
        """True when this grant names `server` (by id) and its org owns or was lent it."""
        return (
            self.server_id is not None and self.server_id == server.id and server.lent_to(self.org)
        )

    def covers(self, permission: str, server: ServerRef, tool: str | None) -> bool:
        """True when this grant gives `permission` on `server` (and `tool`).

        A share lends use (read, execute), never change: `write` needs the owning org's grant.
        """
        if not self.applies_to(server):
            return False
        if permission == "write" and self.org != server.org:
            return False
        # write implies read; any grant lets the holder see (read) what it may use
        held = set(self.permissions) | ({"read"} if self.permissions else set())
        if permission not in held:
            return False
        return tool is None or self.tools is None or tool in self.tools

    @property
    def whole_server(self) -> bool:
        """True when the grant is not narrowed to tools (resources, prompts, completion need it)."""
        return self.tools is None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (JWT, cookie, API key) or a token, with its orgs, teams and grants."""

    kind: str  # user | api_key | service_token | admin_token
    id: str  # user id, or token id for service and admin tokens
    name: str
    user_id: str | None = None
    platform_role: str | None = None
    orgs: Mapping[str, str] = field(default_factory=dict)  # org id → role
    org_slugs: Mapping[str, str] = field(default_factory=dict)  # org slug → org id
    teams: tuple[str, ...] = ()
    # (org id, team name) of every team in `teams`: a team is matched within its org only
    team_orgs: tuple[tuple[str, str], ...] = ()
    scopes: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()
    credential_id: str | None = None  # API key or token id, for the audit trail
    org: str | None = None  # the org a token belongs to, else the user's first org

    @property
    def is_platform_admin(self) -> bool:
        """Platform admins (and the admin token) may do everything."""
        return self.platform_role == "platform_admin"

    def role_in(self, org_id: str) -> str | None:
        """The principal's role in `org_id` (platform admins count as owner)."""
        if self.is_platform_admin:
            return "owner"
        return self.orgs.get(org_id)

    def has_org_role(self, org_id: str, minimum: str) -> bool:
        """True when the role in `org_id` is at least `minimum`."""
        role = self.role_in(org_id)
        return role is not None and ROLE_ORDER.index(role) >= ROLE_ORDER.index(minimum)

    def has_scope(self, scope: str) -> bool:
        """Users have every scope their roles give; tokens only those they carry (`*` matches)."""
        if self.is_platform_admin:
            return True
        want = scope.split(":")
        for held in self.scopes:
            have = held.split(":")
            if len(have) == len(want) and all(
                h in ("*", w) for h, w in zip(have, want, strict=True)
            ):
                return True
        return False

    def member_of(self, org: str | None, team: str | None) -> bool:
        """True when the principal is in the team named `team` of `org`.

        Not a namesake of another org."""
        return org is not None and team is not None and (org, team) in self.team_orgs

    def permits(self, permission: str, server: ServerRef, tool: str | None = None) -> bool:
        """True when a grant (or platform admin) gives `permission` on `server`/`tool`."""
        if self.is_platform_admin:
            return True
        return any(g.covers(permission, server, tool) for g in self.grants)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as rpc.auth.introspect returns it."""
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "user_id": self.user_id,
            "platform_role": self.platform_role,
            "orgs": dict(self.orgs),
            "org_slugs": dict(self.org_slugs),
            "teams": list(self.teams),
            "team_orgs": [list(pair) for pair in self.team_orgs],
            "scopes": list(self.scopes),
            "grants": [
                {
                    "team": g.team,
                    "server": g.server,
                    "permissions": sorted(g.permissions),
                    "tools": list(g.tools) if g.tools is not None else None,
                    "server_id": g.server_id,
                    "org": g.org,
                }
                for g in self.grants
            ],
            "credential_id": self.credential_id,
            "org": self.org,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Principal:
        """Parse the JSON form."""
        return cls(
            kind=doc["kind"],
            id=doc["id"],
            name=doc.get("name") or "",
            user_id=doc.get("user_id"),
            platform_role=doc.get("platform_role"),
            orgs=dict(doc.get("orgs") or {}),
            org_slugs=dict(doc.get("org_slugs") or {}),
            teams=tuple(doc.get("teams") or ()),
            team_orgs=tuple((str(o), str(t)) for o, t in doc.get("team_orgs") or ()),
            scopes=tuple(doc.get("scopes") or ()),
            grants=tuple(
                Grant(
                    team=g["team"],
                    server=g["server"],
                    permissions=frozenset(g.get("permissions") or ()),
                    tools=tuple(g["tools"]) if g.get("tools") is not None else None,
                    server_id=g.get("server_id"),
                    org=g.get("org"),
                )
                for g in doc.get("grants") or ()
            ),
            credential_id=doc.get("credential_id"),
            org=doc.get("org"),
        )
