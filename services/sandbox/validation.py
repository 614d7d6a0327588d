"""Static checks of a code tool: syntax, forbidden constructs, imports, entry point, schema."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

# standard-library modules a code tool may import without approval
STDLIB_ALLOWED = frozenset(
    {
        "asyncio",
        "base64",
        "bisect",
        "calendar",
        "collections",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "fractions",
        "functools",
        "hashlib",
        "heapq",
        "hmac",
        "html",
        "http",
        "io",
        "itertools",
        "json",
        "math",
        "operator",
        "random",
        "re",
        "secrets",
        "statistics",
        "string",
        "textwrap",
        "time",
        "typing",
        "unicodedata",
        "urllib",
        "uuid",
        "zlib",
    }
)
FORBIDDEN_CALLS = frozenset(
    {"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint", "input"}
)
FORBIDDEN_ATTRS = frozenset(
    {
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__code__",
        "__closure__",
        "__bases__",
        "__mro__",
        "__dict__",
        "__getattribute__",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "cr_frame",
    }
)
SCHEMA_TYPES = {"object", "string", "number", "integer", "boolean", "array", "null"}


def _problem(kind: str, message: str, line: int | None = None) -> dict[str, Any]:
    """One finding."""
    return {"kind": kind, "message": message, "line": line}


def validate_code(code: str, input_schema: Any, allowed_modules: Iterable[str]) -> dict[str, Any]:
    """Every problem found; `valid` when there are none."""
    problems: list[dict[str, Any]] = []
    imports: list[str] = []
    try:
        tree = ast.parse(code, "<tool>")
    except SyntaxError as exc:
        problems.append(_problem("syntax", exc.msg or "invalid syntax", exc.lineno))
        tree = None
    if tree is not None:
        allowed = STDLIB_ALLOWED | {m.lower().replace("-", "_") for m in allowed_modules}
        for node in ast.walk(tree):
            problems.extend(_check_node(node, allowed, imports))
        if not any(
            isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "main"
            for n in tree.body
        ):
            problems.append(_problem("entry_point", "the code must define `async def main(...)`"))
    problems.extend(_check_schema(input_schema))
    return {"valid": not problems, "problems": problems, "imports": sorted(set(imports))}


def _check_node(node: ast.AST, allowed: frozenset[str] | set[str], imports: list[str]) -> list:
    """Findings for one syntax node."""
    found = []
    line = getattr(node, "lineno", None)
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            found.append(_problem("import", "relative imports are not allowed", line))
        names = [node.module or ""]
    for name in names:
        top = name.split(".")[0]
        imports.append(top)
        if top.lower() not in allowed:
            found.append(_problem("import", f"module {top!r} is not on the allowlist", line))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in FORBIDDEN_CALLS:
            found.append(_problem("forbidden", f"calling {node.func.id}() is not allowed", line))
    if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
        found.append(_problem("forbidden", f"access to .{node.attr} is not allowed", line))
    if isinstance(node, ast.Name) and node.id in FORBIDDEN_ATTRS:
        found.append(_problem("forbidden", f"use of {node.id} is not allowed", line))
    return found


def _check_schema(schema: Any) -> list[dict[str, Any]]:
    """The input schema must be a JSON Schema object whose properties have known types."""
    if not isinstance(schema, dict):
        return [_problem("schema", "input_schema must be a JSON object")]
    if schema.get("type") != "object":
        return [_problem("schema", 'input_schema must have "type": "object"')]
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        return [_problem("schema", "input_schema.properties must be an object")]
    found = []
    for name, prop in props.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        if kind is not None and not all(k in SCHEMA_TYPES for k in kinds):
            found.append(_problem("schema", f"property {name!r} has an unknown type {kind!r}"))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(r in props for r in required):
        found.append(_problem("schema", "input_schema.required must list defined properties"))
    return found


def check_arguments(schema: dict[str, Any], args: dict[str, Any]) -> dict[str, str]:
    """Field problems of call arguments against the schema (required, types, extras)."""
    problems: dict[str, str] = {}
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in args:
            problems[name] = "is required"
    types = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "array": list,
        "object": dict,
    }
    for name, value in args.items():
        prop = props.get(name)
        if prop is None:
            if schema.get("additionalProperties") is False:
                problems[name] = "is not an allowed argument"
            continue
        want = types.get(prop.get("type")) if isinstance(prop, dict) else None
        if want is not None and (
            not isinstance(value, want) or (want is int and isinstance(value, bool))
        ):
            problems[name] = f"must be of type {prop['type']}"
    return problems
