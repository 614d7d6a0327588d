"""Code tools: CRUD with versions, compare, rollback, validate-code and test-code."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, require_platform_admin
from libs.common.errors import Conflict, NotFound, Unprocessable
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import list_query, page_body
from services.sandbox import code_server, codetools
from services.sandbox.context import runtime_of
from services.sandbox.execution import RunRequest, run_code
from services.sandbox.schemas import CodeCheck, ToolCreate, ToolUpdate
from services.sandbox.store import modules as modules_store
from services.sandbox.store import tools as tools_store
from services.sandbox.validation import validate_code

TOOLS = "/api/v1/sandbox/tools"
TOOL = TOOLS + "/{ref}"


async def _admin(request: Request) -> Principal:
    """Code tools are managed by platform admins."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return principal


async def _allowed_modules(request: Request) -> list[str]:
    """Names on the module allowlist."""
    async with runtime_of(request).pool.acquire() as conn:
        return [r["name"] for r in await modules_store.list_modules(conn)]


async def _require_valid(request: Request, code: str, schema: dict) -> None:
    """422 with the findings when the code does not validate."""
    report = validate_code(code, schema, await _allowed_modules(request))
    if not report["valid"]:
        raise Unprocessable(
            "The code does not pass validation.",
            details={"fields": {"code": report["problems"][0]["message"]}, **report},
        )


async def _require_code_server(request: Request, server: str) -> None:
    """409 when `server` is a registered server of another transport (a new name is created)."""
    if server == "code":
        return
    try:
        view = await runtime_of(request).view(server)
    except NotFound:
        return  # the registry creates it as a `code` server on the tool's event
    if view.get("transport") != "code":
        raise Conflict(
            f"Server {server!r} is not a code server.",
            details={"server": server, "transport": view.get("transport")},
        )


async def create_tool(request: Request) -> Response:
    """Save a new code tool (version 1); it is served once approved."""
    rt = runtime_of(request)
    principal = await _admin(request)
    body = await parse_body(request, ToolCreate)
    await _require_valid(request, body.code, body.input_schema)
    await _require_code_server(request, body.server)
    policy = await rt.policy()
    async with rt.pool.acquire() as conn, conn.transaction():
        row = await codetools.create_tool(
            conn, body.model_dump(), principal.id, not policy.require_tool_approval
        )
    return json_response(codetools.tool_out(row), 201)


async def list_tools(request: Request) -> Response:
    """Code tools, paged, `q` searching name and description, `status` filter."""
    await _admin(request)
    query = list_query(request, sorts=["created_at", "name", "updated_at"], filters=["status"])
    async with runtime_of(request).pool.acquire() as conn:
        rows, total = await tools_store.list_tools(
            conn,
            query.q,
            query.filters.get("status"),
            query.order_sql,
            query.page_size,
            query.offset,
        )
    return json_response(page_body([codetools.tool_out(r) for r in rows], total, query))


async def get_tool(request: Request) -> Response:
    """One tool by id or name."""
    await _admin(request)
    async with runtime_of(request).pool.acquire() as conn:
        row = await tools_store.get_tool(conn, request.path_params["ref"])
    if row is None:
        raise NotFound("Tool not found.", details={"tool": request.path_params["ref"]})
    return json_response(codetools.tool_out(row))


async def update_tool(request: Request) -> Response:
    """Save changes as a new version; the change needs approval again."""
    rt = runtime_of(request)
    principal = await _admin(request)
    body = await parse_body(request, ToolUpdate)
    policy = await rt.policy()
    async with rt.pool.acquire() as conn, conn.transaction():
        tool = await codetools.locked_tool(conn, request.path_params["ref"])
        fields = {
            "description": tool["description"] if body.description is None else body.description,
            "code": body.code or tool["code"],
            "input_schema": body.input_schema or tool["input_schema"],
        }
        await _require_valid(request, fields["code"], fields["input_schema"])
        row = await codetools.save_version(
            conn,
            tool,
            fields,
            principal.id,
            body.note or "edited",
            not policy.require_tool_approval,
        )
    return json_response(codetools.tool_out(row))


async def delete_tool(request: Request) -> Response:
    """Delete a tool with its versions."""
    principal = await _admin(request)
    async with runtime_of(request).pool.acquire() as conn, conn.transaction():
        tool = await codetools.locked_tool(conn, request.path_params["ref"])
        await codetools.delete_tool(conn, tool, principal.id)
    return no_content()


async def list_versions(request: Request) -> Response:
    """Every saved version, newest first."""
    await _admin(request)
    async with runtime_of(request).pool.acquire() as conn:
        tool = await codetools.locked_tool(conn, request.path_params["ref"])
        rows = await tools_store.list_versions(conn, tool["id"])
    return json_response({"tool": tool["name"], "items": [dict(r) for r in rows]})


def _version_number(raw: str | None, field: str) -> int:
    """A version number from the path or query."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise Unprocessable(
            "Bad version number.", details={"fields": {field: "a positive integer"}}
        )
    return int(raw)


async def _version(conn, tool, n: int):
    """One version row or 404."""
    row = await tools_store.get_version(conn, tool["id"], n)
    if row is None:
        raise NotFound(f"Version {n} not found.", details={"version": n})
    return row


async def get_version(request: Request) -> Response:
    """One version's content."""
    await _admin(request)
    n = _version_number(request.path_params["n"], "n")
    async with runtime_of(request).pool.acquire() as conn:
        tool = await codetools.locked_tool(conn, request.path_params["ref"])
        row = await _version(conn, tool, n)
    return json_response(dict(row))


async def compare_versions(request: Request) -> Response:
    """A unified diff between versions `a` and `b`."""
    await _admin(request)
    a = _version_number(request.query_params.get("a"), "a")
    b = _version_number(request.query_params.get("b"), "b")
    async with runtime_of(request).pool.acquire() as conn:
        tool = await codetools.locked_tool(conn, request.path_params["ref"])
        diff = codetools.compare(await _version(conn, tool, a), await _version(conn, tool, b))
    return json_response(diff)


async def rollback(request: Request) -> Response:
    """Save version n's content as a new version (approved at once if it is the approved one)."""
    rt = runtime_of(request)
    principal = await _admin(request)
    n = _version_number(request.path_params["n"], "n")
    policy = await rt.policy()
    async with rt.pool.acquire() as conn, conn.transaction():
        tool = await codetools.locked_tool(conn, request.path_params["ref"])
        old = await _version(conn, tool, n)
        fields = {k: old[k] for k in ("description", "code", "input_schema")}
        row = await codetools.save_version(
            conn, tool, fields, principal.id, f"rollback to v{n}", not policy.require_tool_approval
        )
    return json_response(codetools.tool_out(row))


async def validate(request: Request) -> Response:
    """Syntax, forbidden constructs, imports against the allowlist, entry point and schema."""
    await _admin(request)
    body = await parse_body(request, CodeCheck)
    return json_response(
        validate_code(body.code, body.input_schema, await _allowed_modules(request))
    )


async def test_code(request: Request) -> Response:
    """Run code with sample arguments in the sandbox: result, stdout/stderr, duration, memory."""
    await _admin(request)
    body = await parse_body(request, CodeCheck)
    report = validate_code(body.code, body.input_schema, await _allowed_modules(request))
    if not report["valid"]:
        return json_response({"ok": False, "outcome": "invalid", "validation": report}, 422)
    rt = runtime_of(request)
    policy = await rt.policy()
    timeout = min(body.timeout_s or policy.timeout_s, policy.timeout_s)
    packages = await code_server.packages_for(rt, report["imports"])
    req = RunRequest(
        code=body.code,
        args=body.args,
        kind="test",
        limits=policy.limits(),
        timeout_s=timeout,
        packages=packages,
    )
    return json_response(await run_code(rt, req))


routes = [
    Route(f"{TOOLS}/validate-code", validate, methods=["POST"]),
    Route(f"{TOOLS}/test-code", test_code, methods=["POST"]),
    Route(TOOLS, create_tool, methods=["POST"]),
    Route(TOOLS, list_tools, methods=["GET"]),
    Route(TOOL, get_tool, methods=["GET"]),
    Route(TOOL, update_tool, methods=["PATCH", "PUT"]),
    Route(TOOL, delete_tool, methods=["DELETE"]),
    Route(f"{TOOL}/versions", list_versions, methods=["GET"]),
    Route(f"{TOOL}/versions/compare", compare_versions, methods=["GET"]),
    Route(f"{TOOL}/versions/{{n}}", get_version, methods=["GET"]),
    Route(f"{TOOL}/versions/{{n}}/rollback", rollback, methods=["POST"]),
]
