"""RPC subjects (`rpc.<service>.<verb>`), defined once; payloads are JSON objects."""

# auth
AUTH_INTROSPECT = "rpc.auth.introspect"  # {"token_hash"} | {"user_id", "session_id"} → principal
AUTH_JWKS = "rpc.auth.jwks"  # {} → {"keys": [JWK, ...]}

# registry
REGISTRY_SNAPSHOT = "rpc.registry.snapshot"  # {names?, offset?, limit?} → routable view, paged
# {"server"} → {"server": stdio view}: what the sandbox needs to launch one hosted server, and
# nothing of the others (their URLs and headers); the sandbox's NATS user cannot ask a snapshot
REGISTRY_HOSTED = "rpc.registry.hosted"

# sandbox
SANDBOX_CALL = "rpc.sandbox.call"  # {"server", "message"} → JSON-RPC response of a hosted server
SANDBOX_DISCOVER = "rpc.sandbox.discover"  # {"server"} → {"tools", "resources", "prompts"}
# `rpc.sandbox.replica.<instance>.<verb>`: work on a server sent to the replica owning its process;
# verbs call, discover, start, restart (routed on by lease) and stop, status, logs (that replica's)
SANDBOX_REPLICA = "rpc.sandbox.replica"
