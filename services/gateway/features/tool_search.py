"""A small BM25 index over tool names, descriptions and parameter names (progressive exposure).

Written here rather than taken from `rank-bm25`: that package scores every document with numpy on
each query and rebuilds from scratch; here postings are sparse (a query touches only the tools
that share a term), tokenisation is cached per tool so a registry change re-tokenises only the
changed server's tools, and nothing new has to be pinned.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.gateway.routing_table import ToolEntry

K1 = 1.2
B = 0.75
# Field weights: a word in the tool's name says more than one in its description.
NAME_W, SERVER_W, TITLE_W, DESC_W, PARAM_W, PARAM_DESC_W = 3, 2, 2, 1, 1, 1
SYNONYM_W = 0.4

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i in into is it its me my of on "
    "or our please some that the their them then there these this to was we what when where "
    "which who will with you your all any".split()
)
# Query-side expansion: words agents use for what tool descriptions say differently.
_SYNONYMS = {
    "remove": ["delete"],
    "delete": ["remove"],
    "erase": ["delete"],
    "fetch": ["get", "retrieve"],
    "retrieve": ["get"],
    "show": ["get", "list"],
    "view": ["get"],
    "read": ["get"],
    "look": ["search", "get"],
    "lookup": ["search", "get"],
    "find": ["search"],
    "search": ["find", "query"],
    "new": ["create"],
    "make": ["create"],
    "add": ["create"],
    "open": ["create"],
    "file": ["create"],
    "edit": ["update"],
    "modify": ["update"],
    "change": ["update"],
    "rename": ["update"],
    "stop": ["terminate", "cancel"],
    "kill": ["terminate", "delete"],
    "start": ["run", "launch", "create"],
    "launch": ["run", "start"],
    "run": ["execute", "trigger"],
    "execute": ["run"],
    "trigger": ["run"],
    "post": ["send"],
    "send": ["post"],
    "message": ["msg"],
    "msg": ["message"],
    "upload": ["put"],
    "download": ["get"],
    "comment": ["note"],
    "ticket": ["issue"],
    "bug": ["issue"],
    "pr": ["pull", "request"],
    "repo": ["repository"],
    "repository": ["repo"],
    "db": ["database"],
    "database": ["db"],
    "k8s": ["kubernetes"],
    "kubernetes": ["k8s"],
    "bucket": ["s3"],
    "charge": ["payment"],
    "pay": ["payment"],
    "money": ["payment", "refund"],
    "user": ["member"],
    "member": ["user"],
    "people": ["user"],
    "invite": ["add"],
    "schedule": ["event", "create"],
    "meeting": ["event"],
    "log": ["logs"],
    "restart": ["rollout", "restart"],
}


def stem(word: str) -> str:
    """A light suffix stripper: plurals, -ing, -ed and a final e fold to one form."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Words of a text: split on anything not alphanumeric and on camelCase, stemmed."""
    out = []
    for word in _WORD.findall(_CAMEL.sub(" ", text)):
        low = word.lower()
        if low not in STOPWORDS:
            out.append(stem(low))
    return out


_STEMMED_SYNONYMS = {
    stem(k): [t for v in vs for t in tokens(v) if t != stem(k)] for k, vs in _SYNONYMS.items()
}


def query_terms(query: str) -> dict[str, float]:
    """Query terms with weights: the words themselves (1.0) and their synonyms (lower)."""
    terms: dict[str, float] = {}
    words = tokens(query)
    for word in words:
        terms[word] = terms.get(word, 0.0) + 1.0
    for word in words:
        for syn in _STEMMED_SYNONYMS.get(word, ()):
            if syn not in terms:
                terms[syn] = SYNONYM_W
    return terms


def document(tool: ToolEntry) -> Counter[str]:
    """The weighted bag of words of one tool."""
    bag: Counter[str] = Counter()
    definition = tool.definition

    def add(text: Any, weight: int) -> None:
        if isinstance(text, str) and text:
            for tok in tokens(text):
                bag[tok] += weight

    add(tool.name, NAME_W)
    add(tool.server, SERVER_W)
    add(definition.get("title"), TITLE_W)
    add(definition.get("description"), DESC_W)
    schema = definition.get("inputSchema")
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(properties, Mapping):
        for pname, prop in properties.items():
            add(pname, PARAM_W)
            if isinstance(prop, Mapping):
                add(prop.get("description"), PARAM_DESC_W)
    return bag


Key = tuple[str, str]  # (server, upstream tool name)


@dataclass(frozen=True)
class _Doc:
    tool: ToolEntry
    bag: Counter[str]
    length: int


class ToolIndex:
    """BM25 over every routable tool; callers pass the keys the principal may execute."""

    def __init__(self) -> None:
        self._docs: dict[Key, _Doc] = {}
        self._postings: dict[str, list[tuple[Key, float]]] = {}
        self._idf: dict[str, float] = {}
        self.version: Any = None

    def __len__(self) -> int:
        return len(self._docs)

    def rebuild(self, tools: Iterable[ToolEntry], version: Any = None) -> None:
        """Index `tools`, re-tokenising only tools that are new or changed since the last build."""
        docs: dict[Key, _Doc] = {}
        for tool in tools:
            key = (tool.server, tool.name)
            old = self._docs.get(key)
            if old is not None and old.tool is tool:
                docs[key] = old
            else:
                bag = document(tool)
                docs[key] = _Doc(tool, bag, sum(bag.values()))
        avg = (sum(d.length for d in docs.values()) / len(docs)) if docs else 1.0
        postings: dict[str, list[tuple[Key, float]]] = {}
        for key, doc in docs.items():
            norm = K1 * (1 - B + B * doc.length / (avg or 1.0))
            for term, tf in doc.bag.items():
                postings.setdefault(term, []).append((key, tf * (K1 + 1) / (tf + norm)))
        n = len(docs)
        self._idf = {
            t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()
        }
        self._docs, self._postings, self.version = docs, postings, version

    def search(
        self, query: str, allowed: Mapping[Key, Any], limit: int = 10
    ) -> list[tuple[Key, float]]:
        """The best `limit` keys among `allowed` for the query, best first (ties by name)."""
        scores: dict[Key, float] = {}
        for term, weight in query_terms(query).items():
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = self._idf[term] * weight
            for key, part in posting:
                if key in allowed:
                    scores[key] = scores.get(key, 0.0) + idf * part
        best = heapq.nsmallest(limit, scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(key, round(score, 4)) for key, score in best]
