"""The MCP tools a source declares: a `tools.json` manifest, or static extraction from code.

A manifest at the source root holds an MCP `tools/list` result (`{"tools": [...]}`, also wrapped
in a JSON-RPC `result`) or a bare list of Tool objects; its definitions are kept whole (the
registry fingerprints them). Without one, tools are read from Python (`@<x>.tool(...)` decorated
functions: `name`/`description` keywords, else the function's name and docstring) and
JavaScript/TypeScript (`.tool("name", "description"`, `registerTool("name", {description: "..."}`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any

MANIFEST = "tools.json"
MAX_TOOLS = 500
MAX_READ = 2 * 1024 * 1024
JS_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx")
_STR = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`((?:[^`\\$]|\\.)*)`)"""
JS_TOOL = re.compile(r"\.tool\(\s*" + _STR + r"\s*,\s*" + _STR)
JS_REGISTER = re.compile(
    r"registerTool\(\s*" + _STR + r"\s*,\s*\{[^{}]*?\bdescription\s*:\s*" + _STR, re.S
)
CAMEL = {"inputSchema": "input_schema", "outputSchema": "output_schema"}


def _sha(text: str) -> str:
    """sha256 of a description, as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tool(name: str, description: str, source: str, definition: Any = None) -> dict[str, Any]:
    """One tool of the report."""
    out: dict[str, Any] = {
        "name": name,
        "description": description,
        "description_sha256": _sha(description),
        "source": source,
    }
    if definition is not None:
        out["definition"] = definition
    return out


def _snake(tool: dict[str, Any]) -> dict[str, Any]:
    """A Tool object with the registry's snake_case schema keys."""
    return {CAMEL.get(k, k): v for k, v in tool.items()}


def from_manifest(root: Path) -> list[dict[str, Any]] | None:
    """The tools of `tools.json` (None when there is none or it is not a tool listing)."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_bytes()[:MAX_READ])
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
        doc = doc["result"]
    items = doc.get("tools") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        return None
    out = []
    for item in items[:MAX_TOOLS]:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            definition = _snake(item)
            out.append(
                _tool(item["name"], str(item.get("description") or ""), MANIFEST, definition)
            )
    return out


def _const(node: ast.AST | None) -> str | None:
    """A string literal's value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _python(text: str, rel: str) -> list[dict[str, Any]]:
    """Tools declared with `@<x>.tool(...)` (or `@tool`) on functions."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            func = call.func if call is not None else deco
            named = (isinstance(func, ast.Attribute) and func.attr == "tool") or (
                isinstance(func, ast.Name) and func.id == "tool"
            )
            if not named:
                continue
            kwargs = {k.arg: k.value for k in call.keywords} if call is not None else {}
            first = _const(call.args[0]) if call is not None and call.args else None
            name = _const(kwargs.get("name")) or first or node.name
            doc = ast.get_docstring(node) or ""
            description = _const(kwargs.get("description")) or doc
            out.append(_tool(name, description, f"{rel}:{node.lineno}"))
            break
    return out


def _unescape(raw: str) -> str:
    """A JS string literal's text (the common escapes)."""
    try:
        return json.loads('"' + raw.replace('"', '\\"').replace("\\'", "'") + '"')
    except ValueError:
        return raw


def _js(text: str, rel: str) -> list[dict[str, Any]]:
    """Tools declared with `.tool("name", "desc"` or `registerTool("name", {description})`."""
    out = []
    for pattern in (JS_TOOL, JS_REGISTER):
        for match in pattern.finditer(text):
            groups = match.groups()
            name = next(g for g in groups[:3] if g is not None)
            desc = next((g for g in groups[3:] if g is not None), "")
            line = text.count("\n", 0, match.start()) + 1
            out.append(_tool(_unescape(name), _unescape(desc), f"{rel}:{line}"))
    return out


def extract(root: Path, files: list[str]) -> list[dict[str, Any]]:
    """The tools of the source, in a stable order (manifest order, else by file and line)."""
    listed = from_manifest(root)
    if listed is not None:
        return listed
    out: list[dict[str, Any]] = []
    for rel in files:
        if "node_modules/" in f"/{rel}" or len(out) >= MAX_TOOLS:
            continue
        if rel.endswith(".py") or rel.endswith(JS_SUFFIXES):
            try:
                text = (root / rel).read_bytes()[:MAX_READ].decode("utf-8", errors="replace")
            except OSError:
                continue
            out.extend(_python(text, rel) if rel.endswith(".py") else _js(text, rel))
    return out[:MAX_TOOLS]
