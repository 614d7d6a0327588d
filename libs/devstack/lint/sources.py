"""What the lint rules read: a parsed Python file and the findings they report."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# what the rules read; tests and benchmarks may reach into what they exercise
SCANNED = ("services", "libs")


@dataclass(frozen=True, order=True)
class Finding:
    """One rule broken at one place."""

    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        """Render as `path:line: rule: message`."""
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass
class Source:
    """A Python file of the repository, parsed once for every rule."""

    root: Path
    path: Path  # relative to root, with forward slashes
    tree: ast.Module
    docstrings: set[int] = field(default_factory=set)  # ids of docstring nodes

    @property
    def rel(self) -> str:
        """The path as findings print it."""
        return self.path.as_posix()

    @property
    def module(self) -> str:
        """The dotted module name (`services.auth.store.users`; a package is its __init__)."""
        parts = list(self.path.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def finding(self, node: ast.AST, rule: str, message: str) -> Finding:
        """A finding of `rule` at `node`."""
        return Finding(self.rel, getattr(node, "lineno", 1), rule, message)

    def strings(self) -> Iterator[tuple[ast.AST, str]]:
        """Every string literal but docstrings, f-strings as their literal parts joined."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(
                    v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                    for v in node.values
                )
                yield node, text
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                # an f-string's parts are reported with the f-string
                in_fstring = getattr(node, "_in_fstring", False)
                if id(node) not in self.docstrings and not in_fstring:
                    yield node, node.value


def load(root: Path, path: Path) -> Source:
    """Parse one file under root."""
    tree = ast.parse(path.read_text(), str(path))
    source = Source(root, path.relative_to(root), tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                source.docstrings.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            for value in node.values:
                value._in_fstring = True  # type: ignore[attr-defined]
    return source


def sources(root: Path, top: tuple[str, ...] = SCANNED) -> list[Source]:
    """Every Python file under the top folders of root, parsed."""
    found = []
    for folder in top:
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found.append(load(root, path))
    return found
