"""RPC subjects (`rpc.<service>.<verb>`), defined once; payloads are JSON objects."""


def served_by(service: str) -> str:
    """The pattern of every RPC subject a service answers."""
    return f"rpc.{service}.>"


# auth
AUTH_INTROSPECT = "rpc.auth.introspect"  # {"token_hash"} | {"user_id", "session_id"} → principal
AUTH_JWKS = "rpc.auth.jwks"  # {} → {"keys": [JWK, ...]}
# {"ref": id or slug} → {"id", "slug", "status", "plan"}; 404 when none
AUTH_ORG = "rpc.auth.org"
# {"org": id or slug, "plan", "actor"?} → the org as rpc.auth.org answers it (and auth.org.updated)
AUTH_SET_PLAN = "rpc.auth.set_plan"

# registry
REGISTRY_SNAPSHOT = "rpc.registry.snapshot"  # {names?, offset?, limit?} → routable view, paged
# {"server"} → {"server": stdio view}: what the sandbox needs to launch one hosted server, and
# nothing of the others (their URLs and headers); the sandbox's NATS user cannot ask a snapshot
REGISTRY_HOSTED = "rpc.registry.hosted"
# {"org": id, "servers": [name or id, ...]} → {"servers": [{"ref", "id", "name", "org",
# "shared"}]}: only the servers the org owns or was shared (docs/TENANCY.md); others are absent
REGISTRY_RESOLVE = "rpc.registry.resolve"
# {"orgs"?: [id, ...]} → {"orgs": [{"org", "policies": [...], "approved": [version id]}]}: the
# enabled policies and approvals the gateway enforces (libs/common/policy.py)
REGISTRY_POLICIES = "rpc.registry.policies"

# sandbox
SANDBOX_CALL = "rpc.sandbox.call"  # {"server", "message"} → JSON-RPC response of a hosted server
SANDBOX_DISCOVER = "rpc.sandbox.discover"  # {"server"} → {"tools", "resources", "prompts"}
# code tools for the registry's export/import (MCPBox): approved content out, tools in
SANDBOX_CODE_TOOLS_EXPORT = "rpc.sandbox.code_tools.export"
SANDBOX_CODE_TOOLS_IMPORT = "rpc.sandbox.code_tools.import"
# `rpc.sandbox.replica.<instance>.<verb>`: work on a server sent to the replica owning its process;
# verbs call, discover, start, restart (routed on by lease) and stop, status, logs (that replica's)
SANDBOX_REPLICA = "rpc.sandbox.replica"

# catalog scanning (docs/CATALOG.md, Scanning)
# {"version_id", "offset", "length" ≤ 512 KiB} → {"data": base64, "offset", "size", "sha256"}:
# one chunk of a catalog version's source tarball, for the sandbox's scanner
REGISTRY_SOURCE = "rpc.registry.source"
# {"version_id", "timeout_s"?} → {"outcome": scanned | refused | error, "reason", "report"}
SANDBOX_SCAN = "rpc.sandbox.scan"
