"""BM25 tool search: the labelled set's recall@5, tokenisation, permissions, incremental rebuild."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from libs.common import wire
from libs.common.rpc_types import ServerView, ToolView
from services.gateway.features.tool_search import ToolIndex, tokens
from services.gateway.routing_table import RoutingTable

FIXTURES = Path(__file__).parents[4] / "fixtures" / "gateway"


def catalogue() -> list[ServerView]:
    """Server views (as the registry snapshot sends them) from tool_catalogue.txt."""
    views: list[dict] = []
    for line in (FIXTURES / "tool_catalogue.txt").read_text().splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            views.append({"name": name, "id": f"id-{name}", "status": "healthy", "tools": []})
        elif line.strip() and not line.startswith("#"):
            name, description, params = (part.strip() for part in line.split("|"))
            properties = {p.strip(): {"type": "string"} for p in params.split(",") if p.strip()}
            views[-1]["tools"].append(
                {
                    "name": name,
                    "description": description,
                    "input_schema": {"type": "object", "properties": properties},
                }
            )
    return [wire.decode(ServerView, v) for v in views]


def queries() -> list[tuple[str, set[tuple[str, str]]]]:
    """(query, {(server, tool)}) from tool_queries.txt."""
    out = []
    for line in (FIXTURES / "tool_queries.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            query, labels = line.split("|")
            out.append((query.strip(), {tuple(x.strip().split("/")) for x in labels.split(",")}))
    return out


def loaded() -> tuple[RoutingTable, ToolIndex]:
    table = RoutingTable()
    table.replace(catalogue())
    index = ToolIndex()
    index.rebuild(table.by_public.values(), table.version)
    return table, index


def test_the_labelled_set_is_large_enough_and_labels_name_real_tools() -> None:
    table, _ = loaded()
    keys = {(t.server, t.name) for t in table.by_public.values()}
    labelled = queries()
    assert len(keys) >= 500
    assert len(labelled) >= 60
    assert not [label for _, labels in labelled for label in labels if label not in keys]


def test_recall_at_5_on_the_labelled_set_is_at_least_0_9() -> None:
    table, index = loaded()
    allowed = {(t.server, t.name): t for t in table.by_public.values()}
    labelled = queries()
    misses = []
    t0 = time.perf_counter()
    for query, labels in labelled:
        top = [key for key, _ in index.search(query, allowed, 5)]
        if not labels & set(top):
            misses.append((query, top))
    per_query_ms = (time.perf_counter() - t0) * 1000 / len(labelled)
    recall = 1 - len(misses) / len(labelled)
    print(
        f"\nrecall@5 = {recall:.3f} over {len(labelled)} queries, {len(allowed)} tools; "
        f"{per_query_ms:.2f} ms per query; misses: {misses}"
    )
    assert recall >= 0.9


def test_names_split_on_underscores_dashes_and_camel_case() -> None:
    assert tokens("getPullRequest_diff-v2") == ["get", "pull", "request", "diff", "v2"]
    assert tokens("Listing the Issues") == tokens("list issue")


def test_search_never_returns_a_tool_outside_the_allowed_set() -> None:
    table, index = loaded()
    allowed = {(t.server, t.name): t for t in table.by_public.values() if t.server != "github"}
    hits = index.search("create an issue in the github repository", allowed, 50)
    assert hits
    assert all(server != "github" for (server, _), _ in hits)


def test_a_rebuild_retokenises_only_the_changed_server() -> None:
    table, index = loaded()
    before = dict(index._docs)
    view = next(v for v in catalogue() if v.name == "slack")
    llama = ToolView("summon_llama", description="Summon a llama.")
    table.upsert(dataclasses.replace(view, tools=[*view.tools, llama]))
    index.rebuild(table.by_public.values(), table.version)
    changed = [k for k, doc in index._docs.items() if before.get(k) is not doc]
    assert changed and {server for server, _ in changed} == {"slack"}
    allowed = {(t.server, t.name): t for t in table.by_public.values()}
    assert index.search("llama", allowed, 1)[0][0] == ("slack", "summon_llama")
