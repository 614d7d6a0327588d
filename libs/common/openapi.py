"""A service's OpenAPI 3.1 document, its schemas read from the handlers' own pydantic models.

A handler's request body is the model it gives `parse_body(request, Model)` or
`validate(Model, ...)`; its query, the model it gives `query_model(request, Model)`, or the list
parameters when it calls `list_query(...)`; its success response, a model whose
`from_record`/`model_validate`/constructor result it passes to `json_response`, with that call's
status; a list route answers one `Page`. The handler's source (and the module-level helpers it
calls) is read once per process, so the document and the code cannot drift apart: nothing is
declared twice.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from libs.common.pagination import MAX_PAGE_SIZE

BODY_CALLS = {"parse_body": 1, "validate": 0}  # call name → position of the model argument
QUERY_CALLS = {"query_model": 1}
PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
PAGE = {"$ref": "#/components/schemas/Page"}
PAGE_SCHEMA = {
    "type": "object",
    "required": ["items", "total", "page", "page_size", "pages"],
    "properties": {
        "items": {"type": "array", "items": {"type": "object"}},
        "total": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1},
        "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        "pages": {"type": "integer", "minimum": 0},
    },
}
LIST_PARAMETERS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    },
    {"name": "sort", "in": "query", "schema": {"type": "string"}},
    {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
    {"name": "q", "in": "query", "schema": {"type": "string"}},
]


@dataclass
class Found:
    """What a handler's source says about its request and response."""

    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    listed: bool = False
    responses: dict[int, type[pydantic.BaseModel]] = field(default_factory=dict)


def build(service: str, version: str, routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The document: every HTTP route, with the schemas its handler uses."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA, "Page": PAGE_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for routed, route in walk(routes, ""):
        if not isinstance(route, Route):
            continue
        path = PARAM.sub(r"{\1}", routed)  # `{path:path}` (Starlette's converter) is `{path}`
        found = inspect_handler(route.endpoint)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                route, method, path, found, components
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Switchboard {service}", "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def walk(routes: Sequence[BaseRoute], prefix: str) -> list[tuple[str, BaseRoute]]:
    """Flatten mounts into (full path, route) pairs."""
    out: list[tuple[str, BaseRoute]] = []
    for route in routes:
        if isinstance(route, Mount):
            out.extend(walk(route.routes or [], prefix + route.path))
        elif isinstance(route, (Route, WebSocketRoute)):
            out.append((prefix + route.path, route))
    return out


def _operation(
    route: Route, method: str, path: str, found: Found, components: dict[str, Any]
) -> dict[str, Any]:
    """One operation: summary, parameters, request body, responses."""
    doc = (route.endpoint.__doc__ or route.name or "").strip().splitlines()
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PARAM.findall(path)
    ]
    if found.listed:
        parameters += LIST_PARAMETERS
    responses: dict[str, Any] = {"default": {"description": "An error", "content": _json(ERROR)}}
    if found.listed and method == "GET":
        responses["200"] = {"description": "One page of the list", "content": _json(PAGE)}
    if found.query is not None:
        schema = _schema(found.query, components)
        for name, prop in (schema.get("properties") or {}).items():
            parameters.append({"name": name, "in": "query", "schema": prop})
    operation: dict[str, Any] = {
        "summary": doc[0] if doc else "",
        "operationId": f"{route.name}_{method.lower()}",
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if found.body is not None and method in ("POST", "PUT", "PATCH"):
        ref = _ref(found.body, components)
        operation["requestBody"] = {"required": True, "content": _json(ref)}
    for status, model in found.responses.items():
        operation["responses"][str(status)] = {
            "description": model.__doc__.strip().splitlines()[0] if model.__doc__ else "",
            "content": _json(_ref(model, components)),
        }
    return operation


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    """An application/json content entry."""
    return {"application/json": {"schema": schema}}


def _ref(model: type[pydantic.BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A $ref to the model's schema, added to the components."""
    _schema(model, components)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schema(model: type[pydantic.BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema (validation mode), its nested models moved to the components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return schema


@functools.cache
def inspect_handler(endpoint: Callable[..., Any]) -> Found:
    """Read the handler's source, and that of the module helpers it calls (one level)."""
    found = Found()
    tree = _tree(endpoint)
    if tree is None:
        return found
    scope = getattr(endpoint, "__globals__", {})
    _scan(tree, scope, found)
    for name in _called_names(tree):
        helper = scope.get(name)
        if inspect.isfunction(helper) and helper.__module__ == endpoint.__module__:
            sub = _tree(helper)
            if sub is not None:
                _scan(sub, scope, found)
    return found


def _tree(func: Callable[..., Any]) -> ast.AST | None:
    """The parsed source of a function (None when it has none)."""
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None


def _called_names(tree: ast.AST) -> set[str]:
    """Names of the plain functions a body calls."""
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def _scan(tree: ast.AST, scope: dict[str, Any], found: Found) -> None:
    """Record the body, query and response models a function's calls name."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name in BODY_CALLS and found.body is None:
            found.body = _model_at(node, BODY_CALLS[name], scope)
        elif name in QUERY_CALLS and found.query is None:
            found.query = _model_at(node, QUERY_CALLS[name], scope)
        elif name == "list_query":
            found.listed = True
        elif name == "json_response" and node.args:
            model = _produced_model(node.args[0], scope)
            if model is not None:
                found.responses.setdefault(_status(node), model)


def _call_name(node: ast.Call) -> str | None:
    """`f` of `f(...)` or `x.f(...)`."""
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _model_at(node: ast.Call, index: int, scope: dict[str, Any]) -> type[pydantic.BaseModel] | None:
    """The pydantic model named by the call's positional argument `index`."""
    if len(node.args) <= index or not isinstance(node.args[index], ast.Name):
        return None
    return _as_model(scope.get(node.args[index].id))


def _produced_model(arg: ast.expr, scope: dict[str, Any]) -> type[pydantic.BaseModel] | None:
    """The model whose instance `arg` builds: `M(...)`, `M.from_record(...)`, `M.validate(...)`."""
    if not isinstance(arg, ast.Call):
        return None
    func = arg.func
    if isinstance(func, ast.Name):
        return _as_model(scope.get(func.id))
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return _as_model(scope.get(func.value.id))
    return None


def _status(node: ast.Call) -> int:
    """The status of a `json_response(...)` call (200 unless a literal says otherwise)."""
    candidates = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "status")]
    for value in candidates:
        if isinstance(value, ast.Constant) and isinstance(value.value, int):
            return value.value
    return 200


def _as_model(obj: Any) -> type[pydantic.BaseModel] | None:
    """`obj` when it is a pydantic model class."""
    if isinstance(obj, type) and issubclass(obj, pydantic.BaseModel):
        return obj
    return None
