"""RPC requests and replies as dataclasses, each bound to its subject (`rpc.py`) in an `Rpc`.

Both ends use them: a caller sends `bus.call(REGISTRY_SNAPSHOT, SnapshotRequest(...))` and gets a
`Snapshot`; a server answers with `bus.answer(REGISTRY_SNAPSHOT, handler)`, its handler taking a
`SnapshotRequest`. The wire stays the JSON objects it was (a request leaves out its unset optional
fields, as the dicts did), so replicas of two versions still understand each other; fields a reader
does not know are ignored. Fields that carry what an upstream MCP server declared (schemas,
annotations, listings) stay plain JSON: the gateway copes with their oddities, and one odd tool
must not make a whole snapshot unreadable.

A little over 300 lines: one module holds every RPC's types, so the wire contract is in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from libs.common import rpc, wire
from libs.common.errors import UpstreamError, ValidationError
from libs.common.policy import Certification, Rule
from libs.common.principal import Principal

Q = TypeVar("Q")
R = TypeVar("R")


@dataclass(frozen=True)
class Rpc(Generic[Q, R]):
    """An RPC subject and the dataclasses of its request and reply."""

    subject: str
    request: type[Q]
    reply: type[R]

    def encode_request(self, request: Q) -> dict[str, Any]:
        """The request's JSON object: unset optional fields (None by default) left out."""
        return {
            f.name: value
            for f in dataclasses.fields(request)  # type: ignore[arg-type]
            if (value := getattr(request, f.name)) is not None or f.default is not None
        }

    def decode_request(self, doc: Any) -> Q:
        """The typed request; 400 VALIDATION_ERROR naming the field when it does not fit."""
        try:
            return wire.decode(self.request, doc)
        except wire.WireError as exc:
            raise ValidationError(str(exc), details={"field": exc.field}) from None

    def decode_reply(self, doc: Any) -> R:
        """The typed reply; 502 UPSTREAM_ERROR when the server answered outside the contract."""
        try:
            return wire.decode(self.reply, doc)
        except wire.WireError as exc:
            raise UpstreamError(
                f"{self.subject} answered outside its contract: {exc}",
                details={"subject": self.subject},
            ) from None


# ---- auth ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntrospectRequest:
    """An opaque credential by its hash, or a verified JWT's user and session."""

    token_hash: str | None = None
    user_id: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class JwksRequest:
    """The JWKS takes no arguments."""


@dataclass(frozen=True)
class Jwks:
    """The public keys tokens are verified with (RFC 7517 JWKs)."""

    keys: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrgRequest:
    """An org by id or slug."""

    ref: str


@dataclass(frozen=True)
class OrgReply:
    """An org that exists (404 otherwise)."""

    id: str
    slug: str
    status: str
    plan: str | None = None  # None: an auth that predates plans (the free plan's limits apply)


@dataclass(frozen=True)
class SetPlanRequest:
    """Set an org's plan (by org id or slug): a billing webhook's outcome; `actor` for audit."""

    org: str
    plan: str
    actor: str | None = None


AUTH_INTROSPECT = Rpc(rpc.AUTH_INTROSPECT, IntrospectRequest, Principal)
AUTH_JWKS = Rpc(rpc.AUTH_JWKS, JwksRequest, Jwks)
AUTH_ORG = Rpc(rpc.AUTH_ORG, OrgRequest, OrgReply)
AUTH_SET_PLAN = Rpc(rpc.AUTH_SET_PLAN, SetPlanRequest, OrgReply)


# ---- registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotRequest:
    """A page of the routable snapshot, of some servers (by name) or all."""

    names: list[str] | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class ToolUpstream:
    """Where calls to a tool imported from an external source go, instead of its server."""

    url: str
    transport: str = "streamable-http"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    source_id: str | None = None


@dataclass(frozen=True)
class ToolView:
    """A tool in the snapshot: its MCP definition (snake_case), fingerprint and routability."""

    name: str
    title: str | None = None
    description: str | None = None
    input_schema: Any = None  # the JSON Schema the upstream declared
    output_schema: Any = None
    annotations: Any = None  # as discovery stored them (snake_case hints)
    execution: Any = None  # `execution` as declared (2025-11-25), even `{}`
    fingerprint: str | None = None
    routable: bool = True
    upstream: ToolUpstream | None = None


@dataclass(frozen=True)
class ServerView:
    """A server in the snapshot, secrets decrypted: what the gateway routes with.

    The registry fills every field; the defaults are what a reader assumes of a field an older
    registry did not send.
    """

    name: str
    id: str
    path: str | None = None
    org: str | None = None
    owner_team: str | None = None
    shared_with: list[str] = field(default_factory=list)
    transport: str = "streamable-http"
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    enabled: bool = True
    status: str = "unknown"
    timeout_s: float | None = None
    max_concurrency: int | None = None
    per_user: bool = False
    trusted: bool = False
    version: int = 0
    tools: list[ToolView] = field(default_factory=list)
    resources: list[dict[str, Any]] | None = None
    prompts: list[dict[str, Any]] | None = None
    # the catalog version it runs and that version's latest scan (None: not from the catalog)
    certification: Certification | None = None


@dataclass(frozen=True)
class Snapshot:
    """A page of server views, the routing settings and the registry's version."""

    servers: list[ServerView]
    version: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    next_offset: int | None = None


@dataclass(frozen=True)
class HostedRequest:
    """One hosted server's launch spec, by name."""

    server: str


@dataclass(frozen=True)
class HostedServer:
    """What the sandbox needs to launch a stdio server (a non-stdio one: its transport alone)."""

    id: str
    name: str
    transport: str
    org: str | None = None
    owner_team: str | None = None  # who may reach it (docs/TENANCY.md)
    shared_with: list[str] = field(default_factory=list)
    enabled: bool = True
    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = field(default=None, repr=False)
    cwd: str | None = None
    timeout_s: float | None = None
    per_user: bool | None = None
    version: int | None = None


@dataclass(frozen=True)
class HostedReply:
    """The launch spec of the server asked for."""

    server: HostedServer


@dataclass(frozen=True)
class ResolveRequest:
    """Servers (by name, path or id) an org names in a grant."""

    org: str
    servers: list[str]


@dataclass(frozen=True)
class ResolvedServer:
    """A server the org owns (`shared` False) or was shared."""

    ref: str  # as the request named it
    id: str
    name: str
    org: str | None
    shared: bool


@dataclass(frozen=True)
class ResolveReply:
    """The servers named that the org may bind a grant to; the others are absent."""

    servers: list[ResolvedServer] = field(default_factory=list)


REGISTRY_SNAPSHOT = Rpc(rpc.REGISTRY_SNAPSHOT, SnapshotRequest, Snapshot)
REGISTRY_HOSTED = Rpc(rpc.REGISTRY_HOSTED, HostedRequest, HostedReply)
REGISTRY_RESOLVE = Rpc(rpc.REGISTRY_RESOLVE, ResolveRequest, ResolveReply)


@dataclass(frozen=True)
class PoliciesRequest:
    """The policies of some orgs (by id), or of every org."""

    orgs: list[str] | None = None


@dataclass(frozen=True)
class OrgPolicies:
    """An org's enabled policies and the catalog versions it approved (ids)."""

    org: str
    policies: list[Rule] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PolicySet:
    """The orgs asked for (every org with a policy or an approval, when none were named)."""

    orgs: list[OrgPolicies] = field(default_factory=list)


REGISTRY_POLICIES = Rpc(rpc.REGISTRY_POLICIES, PoliciesRequest, PolicySet)


# ---- sandbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxCall:
    """A JSON-RPC message for a hosted server (the caller's principal for per-user servers)."""

    server: str
    message: dict[str, Any]
    timeout_s: float | None = None
    principal: dict[str, Any] | None = None  # Principal.to_dict() of the caller
    hops: int | None = None  # how often replicas forwarded it
    # the server's transport as the caller knows it: `code` (code tools) or `stdio` (a hosted
    # process); unset, the sandbox looks it up
    transport: str | None = None


@dataclass(frozen=True)
class SandboxCallReply:
    """The hosted server's JSON-RPC response (None: the message was a notification)."""

    message: dict[str, Any] | None


@dataclass(frozen=True)
class SandboxDiscover:
    """A hosted server's listing, by name."""

    server: str
    principal: dict[str, Any] | None = None
    hops: int | None = None
    transport: str | None = None  # as in SandboxCall


@dataclass(frozen=True)
class Listing:
    """What a hosted server lists: tools, resources and prompts as it declared them."""

    tools: list[Any] = field(default_factory=list)
    resources: list[Any] = field(default_factory=list)
    prompts: list[Any] = field(default_factory=list)


SANDBOX_CALL = Rpc(rpc.SANDBOX_CALL, SandboxCall, SandboxCallReply)
SANDBOX_DISCOVER = Rpc(rpc.SANDBOX_DISCOVER, SandboxDiscover, Listing)


# ---- catalog scanning ---------------------------------------------------------------------

SOURCE_CHUNK_MAX = 512 * 1024  # raw bytes per rpc.registry.source reply (base64: ~683 KiB)


@dataclass(frozen=True)
class SourceRequest:
    """A byte range of a catalog version's source tarball."""

    version_id: str
    offset: int = 0
    length: int = SOURCE_CHUNK_MAX


@dataclass(frozen=True)
class SourceChunk:
    """Bytes of the tarball (base64), where they start, the whole size and its SHA-256 (hex)."""

    data: str
    offset: int
    size: int
    sha256: str


@dataclass(frozen=True)
class ScanRequest:
    """Scan one catalog version's source in the sandbox."""

    version_id: str
    timeout_s: float | None = None


@dataclass(frozen=True)
class ScanReply:
    """How the scan ended: scanned (with the report), refused (the archive), error (the run)."""

    outcome: str  # scanned | refused | error
    reason: str | None = None
    report: dict[str, Any] | None = None
    duration_ms: int | None = None
    isolation: str | None = None


REGISTRY_SOURCE = Rpc(rpc.REGISTRY_SOURCE, SourceRequest, SourceChunk)
SANDBOX_SCAN = Rpc(rpc.SANDBOX_SCAN, ScanRequest, ScanReply)


@dataclass(frozen=True)
class CodeToolsExport:
    """The approved code tools, for an export (all servers, or the ones named)."""

    servers: list[str] | None = None


@dataclass(frozen=True)
class CodeTools:
    """Code tools as exported: name, server, description, code, input_schema (approved)."""

    tools: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class CodeToolsImport:
    """Create these code tools (all validated first); `on_conflict` fail | skip for names."""

    tools: list[Any]
    actor: str | None = None
    on_conflict: str = "fail"
    dry_run: bool = False


@dataclass(frozen=True)
class CodeToolsImported:
    """Names created (pending approval unless the policy approves at once) and skipped."""

    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


SANDBOX_CODE_TOOLS_EXPORT = Rpc(rpc.SANDBOX_CODE_TOOLS_EXPORT, CodeToolsExport, CodeTools)
SANDBOX_CODE_TOOLS_IMPORT = Rpc(rpc.SANDBOX_CODE_TOOLS_IMPORT, CodeToolsImport, CodeToolsImported)
