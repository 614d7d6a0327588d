"""Import cycles among the modules of one service (Tarjan's strongly connected components)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from libs.devstack.lint.sources import Finding, Source


def imports(source: Source, modules: set[str]) -> Iterator[tuple[str, int]]:
    """The modules of `modules` that a source imports, with the line of each import."""
    package = (
        source.module if source.path.name == "__init__.py" else source.module.rsplit(".", 1)[0]
    )
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    yield f"{base}.{alias.name}", node.lineno
                elif base in modules:
                    yield base, node.lineno


def _absolute(package: str, module: str | None, level: int) -> str:
    """The absolute name of an import's module (`from ..x import y` seen from `package`)."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of a directed graph, each in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component[::-1])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def import_cycles(sources: list[Source]) -> Iterator[Finding]:
    """One finding per import cycle inside a `services/<name>` package."""
    by_service: dict[str, list[Source]] = {}
    for source in sources:
        parts = source.path.parts
        if len(parts) > 2 and parts[0] == "services":
            by_service.setdefault(parts[1], []).append(source)
    for members in by_service.values():
        by_module = {s.module: s for s in members}
        modules = set(by_module)
        graph: dict[str, list[str]] = {}
        lines: dict[tuple[str, str], int] = {}
        for source in members:
            for target, line in imports(source, modules):
                if target != source.module and not _is_parent(target, source.module):
                    graph.setdefault(source.module, []).append(target)
                    lines.setdefault((source.module, target), line)
        for component in strongly_connected(graph):
            if len(component) > 1:
                yield _finding(component, graph, lines, by_module)


def _is_parent(package: str, module: str) -> bool:
    """Whether `package` contains `module` (importing a module runs its packages first)."""
    return module.startswith(package + ".")


def _finding(
    component: list[str],
    graph: dict[str, list[str]],
    lines: dict[tuple[str, str], int],
    by_module: dict[str, Source],
) -> Finding:
    """Report a cycle of the component, starting at its first module."""
    members = set(component)
    path = [component[0]]
    while True:
        nxt = next(t for t in graph[path[-1]] if t in members)
        if nxt in path:
            path = path[path.index(nxt) :] + [nxt]
            break
        path.append(nxt)
    first = by_module[path[0]]
    line = lines[(path[0], path[1])]
    short = " → ".join(m.split(".", 2)[-1] if m.count(".") > 1 else m for m in path)
    extra = f" ({len(component)} modules in the knot)" if len(component) > len(path) - 1 else ""
    return Finding(first.rel, line, "import-cycle", f"{short}{extra}")
