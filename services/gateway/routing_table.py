"""The in-memory routing table: servers and tools from the registry snapshot, client-safe names.

About 440 lines kept together: the entries, the public-name index with its collision rule and the
grant checks all read the same indexes, which the hot path uses without a copy or a lookup
through another module."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import structlog
from mcp.shared.inbound import find_invalid_x_mcp_header, x_mcp_header_map

from libs.common.authn import Principal, ServerRef
from libs.common.policy import Certification, Verdict
from libs.common.rpc_types import ServerView, ToolUpstream, ToolView
from services.gateway.policy_book import PolicyBook

log = structlog.get_logger()

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 64
UNROUTABLE_STATUSES = frozenset(
    {"quarantined", "disabled", "down", "unhealthy", "error", "offline"}
)
HTTP_TRANSPORTS = frozenset({"streamable-http", "http", "sse"})
TASK_SUPPORT = frozenset({"optional", "required"})  # the 2025-11-25 values that allow tasks
AMBIGUOUS_META = "io.switchboard/ambiguousName"  # a renamed tool's would-be name, in its _meta


def public_name(server: str, tool: str, separator: str = "__") -> str:
    """`{server}{sep}{tool}` when client-safe, else a stable alias that ends in a short hash."""
    name = f"{server}{separator}{tool}"
    if NAME_RE.match(name):
        return name
    return hashed_name(server, tool, separator)


def hashed_name(server: str, tool: str, separator: str = "__") -> str:
    """The alias that names one (server, tool) pair alone: the safe name and a short hash."""
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    safe = UNSAFE_RE.sub("_", f"{server}{separator}{tool}")[: MAX_NAME - 9]
    return f"{safe}-{digest}"


@dataclass(frozen=True)
class ToolEntry:
    """One routable tool: where it lives and how clients see it."""

    server: str
    name: str  # the upstream's name
    public: str  # the name on /mcp
    definition: Mapping[str, Any]  # the MCP tool object as the upstream described it
    # the hints, believed only for a server an admin marked trusted: they make calls retryable
    read_only: bool = False
    idempotent: bool = False
    fingerprint: str = ""  # the registry's hash of this definition (what an audit record names)
    # set for a tool imported from an external MCP source: the connection its calls go to
    source: ServerEntry | None = field(default=None, compare=False, repr=False)
    # the name it would have had, when another server's tool has it too (`public` is then the
    # hashed alias of this pair, and the listing says so)
    ambiguous: str | None = None

    def as_listed(self, name: str) -> dict[str, Any]:
        """The MCP tool object under `name` (schemas and `execution` passed on intact)."""
        if self.ambiguous is not None and name == self.public:
            meta = {AMBIGUOUS_META: self.ambiguous}
            return {**self.definition, "name": name, "_meta": meta}
        return {**self.definition, "name": name}

    @cached_property
    def param_headers(self) -> dict[tuple[str, ...], str]:
        """Its `x-mcp-header` annotations: property path -> `Mcp-Param-` suffix.

        None when they are invalid (clients then send no such header). Worked out on the first
        call."""
        schema = self.definition.get("inputSchema")
        if find_invalid_x_mcp_header(schema) is not None:
            return {}
        return x_mcp_header_map(schema)

    @property
    def task_support(self) -> str:
        """`execution.taskSupport` (2025-11-25): absent, or a value the spec lacks, is forbidden."""
        execution = self.definition.get("execution")
        value = execution.get("taskSupport") if isinstance(execution, Mapping) else None
        return value if value in TASK_SUPPORT else "forbidden"


@dataclass
class ServerEntry:
    """A server view from the snapshot and its tools."""

    name: str
    id: str
    path: str
    org: str | None
    owner_team: str | None
    transport: str
    url: str | None
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    enabled: bool = True
    status: str = "unknown"
    timeout_s: float | None = None
    max_concurrency: int | None = None
    trusted: bool = False  # an admin vouches for its tool annotations (retries on hints)
    tools: tuple[ToolEntry, ...] = ()
    resources: tuple[dict[str, Any], ...] = ()
    prompts: tuple[dict[str, Any], ...] = ()
    fingerprint: str = ""
    key: str = ""  # the pool key: the server name, or `{server}\0{source url}\0{digest}`
    sources: tuple[ServerEntry, ...] = ()  # connections of the imported tools' sources
    shared_with: frozenset[str] = frozenset()  # orgs a platform admin lent it to
    certification: Certification | None = None  # its catalog version, which org policies judge

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name

    @cached_property
    def ref(self) -> ServerRef:
        """What grants are checked against: its id, org and shares (docs/TENANCY.md)."""
        return ServerRef(self.id, self.name, self.org, self.owner_team, self.shared_with)

    @property
    def routable(self) -> bool:
        """Enabled and not quarantined, disabled or down."""
        return self.enabled and self.status not in UNROUTABLE_STATUSES

    @property
    def label(self) -> str:
        """The name in logs and metric labels (a source's key holds its url: not a label)."""
        return self.name if self.key == self.name else f"{self.name}#source-{self.fingerprint[:8]}"

    def pool_keys(self) -> set[str]:
        """Every pool key of this server: its own connection and its sources'."""
        return {self.key, *(s.key for s in self.sources)}


def target(server: ServerEntry, tool: ToolEntry) -> ServerEntry:
    """Where a call to `tool` goes: its source's connection, else the server's own."""
    return tool.source or server


def tool_definition(tool: ToolView) -> dict[str, Any]:
    """The MCP tool object from a snapshot tool (snake_case fields → MCP camelCase)."""
    out: dict[str, Any] = {"name": tool.name}
    if tool.title:
        out["title"] = tool.title
    out["description"] = tool.description or ""
    out["inputSchema"] = tool.input_schema or {"type": "object"}
    if tool.output_schema:
        out["outputSchema"] = tool.output_schema
    annotations = wire_annotations(tool.annotations)
    if annotations:
        out["annotations"] = annotations
    if isinstance(tool.execution, Mapping):  # as declared, even `{}`
        out["execution"] = tool.execution
    return out


def wire_annotations(stored: Any) -> dict[str, Any]:
    """Tool annotations as MCP sends them.

    The registry keeps what discovery gave it, which for SDK-parsed tools is snake_case with
    every hint present (`read_only_hint: null`); clients need camelCase with unset hints left
    out."""
    if not isinstance(stored, Mapping):
        return {}
    out = {}
    for key, value in stored.items():
        if value is not None:
            head, *rest = key.split("_")
            out[head + "".join(part.title() for part in rest)] = value
    return out


def server_from_view(view: ServerView, separator: str) -> ServerEntry:
    """Build a ServerEntry from a registry server view."""
    name = view.name
    tools = []
    sources: dict[str, ServerEntry] = {}
    for tool in view.tools:
        if not tool.routable:
            continue
        annotations = wire_annotations(tool.annotations)
        source = None
        if tool.upstream is not None and tool.upstream.url:
            source = _source_entry(view, tool.upstream)
            source = sources.setdefault(source.key, source)
        tools.append(
            ToolEntry(
                server=name,
                name=tool.name,
                public=public_name(name, tool.name, separator),
                definition=tool_definition(tool),
                read_only=view.trusted and bool(annotations.get("readOnlyHint")),
                idempotent=view.trusted and bool(annotations.get("idempotentHint")),
                fingerprint=tool.fingerprint or "",
                source=source,
            )
        )
    tools.sort(key=lambda t: t.name)
    return ServerEntry(
        **_connection(view),
        transport=view.transport or "streamable-http",
        url=view.url,
        headers=dict(view.headers),
        trusted=view.trusted,
        tools=tuple(tools),
        resources=tuple(view.resources or ()),
        prompts=tuple(view.prompts or ()),
        fingerprint=_fingerprint(view.transport, view.url, view.command, view.args, view.headers),
        sources=tuple(sources.values()),
        shared_with=frozenset(view.shared_with),
        certification=view.certification,
    )


def _connection(view: ServerView) -> dict[str, Any]:
    """What a server's own connection and its sources' share: names, owner, limits, status."""
    name = view.name
    return {
        "name": name,
        "id": view.id or name,
        "path": (view.path or name).strip("/") or name,
        "org": view.org,
        "owner_team": view.owner_team,
        "enabled": view.enabled,
        "status": view.status or "unknown",
        "timeout_s": view.timeout_s,
        "max_concurrency": view.max_concurrency,
    }


def _source_entry(view: ServerView, upstream: ToolUpstream) -> ServerEntry:
    """The connection to an external source, under the server's name, limits and status.

    Keyed by (server, source url) plus a digest of transport and headers, so two sources at one
    url with different credentials never share a session.
    """
    transport = upstream.transport or "streamable-http"
    headers = dict(upstream.headers)
    fingerprint = _fingerprint(transport, upstream.url, None, None, headers)
    return ServerEntry(
        **_connection(view),
        transport=transport,
        url=upstream.url,
        headers=headers,
        fingerprint=fingerprint,
        key=f"{view.name}\0{upstream.url}\0{fingerprint[:12]}",
    )


def _fingerprint(
    transport: str | None,
    url: str | None,
    command: str | None,
    args: list[str] | None,
    headers: Mapping[str, str],
) -> str:
    """What identifies a connection: a changed URL, transport or headers means a new session."""
    parts = [str(transport), str(url), str(command), str(args)]
    parts.append(repr(sorted(headers.items())))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def grants_key(principal: Principal, team: str | None) -> tuple[Any, ...]:
    """A cache key for what a principal may see through an endpoint."""
    return (principal.is_platform_admin, principal.grants, team, principal.org)


class RoutingTable:
    """Servers and tools by name; rebuilt piecewise on registry events, read lock-free."""

    def __init__(self, separator: str = "__") -> None:
        self.separator = separator
        self.servers: dict[str, ServerEntry] = {}
        self.by_public: dict[str, ToolEntry] = {}
        self.by_path: dict[str, ServerEntry] = {}
        self.pool_keys: set[str] = set()
        self.version = 0
        self.settings: dict[str, Any] = {}
        self.collisions: dict[str, list[str]] = {}  # would-be name -> servers, when shared
        self._visible: dict[tuple[Any, ...], tuple[int, list[ToolEntry]]] = {}
        self.policies = PolicyBook()  # org policies on catalog versions (no I/O when read)

    def refusal(self, principal: Principal, server: ServerEntry) -> Verdict | None:
        """The policy verdict that keeps the caller's org from the server, or None."""
        return self.policies.verdict(principal.org, server.name, server.certification)

    def policies_changed(self) -> None:
        """Org policies changed: what each caller sees is worked out again."""
        self._visible.clear()

    def replace(self, views: Iterable[ServerView]) -> None:
        """Replace the whole table with the given server views."""
        self.servers = {v.name: server_from_view(v, self.separator) for v in views}
        self._reindex()

    def upsert(self, view: ServerView) -> ServerEntry:
        """Add or replace one server."""
        entry = server_from_view(view, self.separator)
        self.servers[entry.name] = entry
        self._reindex()
        return entry

    def remove(self, name: str) -> ServerEntry | None:
        """Drop one server; returns it when it was present."""
        entry = self.servers.pop(name, None)
        if entry is not None:
            self._reindex()
        return entry

    def _reindex(self) -> None:
        """Rebuild the name indexes (sorted, so lists are deterministic) and bump the version."""
        self.by_public = dict(sorted(self._named().items()))
        self.by_path = {s.path: s for s in self.servers.values()}
        self.pool_keys = {k for s in self.servers.values() for k in s.pool_keys()}
        self.version += 1
        self._visible.clear()
        self.policies.forget_verdicts()

    def _named(self) -> dict[str, ToolEntry]:
        """Every tool by its public name.

        Two servers' tools that would share a name (server `a__b` tool `c` and server `a` tool
        `b__c`, or a crafted alias) never overwrite each
        other: each is listed under its pair's hashed alias, its `_meta` naming the name it
        would have had; an alias that is taken too withholds the tool. Said in the log once
        per change."""
        named: dict[str, ToolEntry] = {}
        clashes: dict[str, list[ToolEntry]] = {}
        renamed: list[str] = []  # names of tools renamed by an earlier clash
        for server in sorted(self.servers.values(), key=lambda s: s.name):
            for tool in server.tools:
                name = tool.ambiguous or tool.public
                if name in clashes:
                    clashes[name].append(tool)
                elif name in named:
                    clashes[name] = [named.pop(name), tool]
                else:
                    named[name] = tool
                    if tool.ambiguous is not None:
                        renamed.append(name)
        for name in renamed:
            if name in named:  # its clash is gone: the plain name comes back
                named[name] = self._renamed(named[name], name, None)
        if not clashes and not self.collisions:
            return named
        wanted = named.keys() | clashes.keys()
        withheld: list[str] = []
        for name, tools in clashes.items():
            for tool in tools:
                alias = hashed_name(tool.server, tool.name, self.separator)
                if alias in named or alias in wanted:
                    withheld.append(f"{tool.server}/{tool.name}")
                else:
                    named[alias] = self._renamed(tool, alias, name)
        report = {name: sorted(t.server for t in tools) for name, tools in clashes.items()}
        if report != self.collisions:
            self.collisions = report
            if report:
                log.warning("tool_name_collision", names=report, withheld=withheld)
        return named

    def _renamed(self, tool: ToolEntry, public: str, ambiguous: str | None) -> ToolEntry:
        """`tool` under `public` (the same object when nothing changes), also in its server."""
        if tool.public == public and tool.ambiguous == ambiguous:
            return tool
        renamed = replace(tool, public=public, ambiguous=ambiguous)
        server = self.servers[tool.server]
        server.tools = tuple(renamed if t is tool else t for t in server.tools)
        return renamed

    def visible_tools(self, principal: Principal, team: str | None = None) -> list[ToolEntry]:
        """Tools the principal may execute (through a team's endpoint: that team's grants only)."""
        key = grants_key(principal, team)
        hit = self._visible.get(key)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        out = [
            tool
            for tool in self.by_public.values()
            if self.servers[tool.server].routable and self.permits(principal, tool, team)
        ]
        if len(self._visible) > 10_000:
            self._visible.clear()
        self._visible[key] = (self.version, out)
        return out

    def permits(
        self,
        principal: Principal,
        tool: ToolEntry,
        team: str | None = None,
        permission="execute",
        *,
        enforce: bool = True,
    ) -> bool:
        """True when a grant (of `team`, when given) allows `permission` on the tool.

        The grant is bound to the server's id and held by its org or one it is shared with
        (docs/TENANCY.md); unless not `enforce`, an org policy denying the server refuses it."""
        server = self.servers.get(tool.server)
        if server is None:
            return False
        if enforce and self.refusal(principal, server) is not None:
            return False
        if team is None and principal.is_platform_admin:
            return True
        ref = server.ref
        return any(
            g.covers(permission, ref, tool.name)
            for g in principal.grants
            if team is None or g.team == team
        )

    def may_read_server(
        self, principal: Principal, server: ServerEntry, team: str | None = None, whole=False
    ) -> bool:
        """True when a grant (of `team`, when given) lets the principal see the server.

        `whole`: all of it (resources, prompts, completion), which a grant narrowed to tools
        does not give. An org policy denying the server refuses it."""
        if self.refusal(principal, server) is not None:
            return False
        if team is None and principal.is_platform_admin:
            return True
        ref = server.ref
        return any(
            g.covers("read", ref, None) and (g.tools is None or not whole)
            for g in principal.grants
            if team is None or g.team == team
        )
