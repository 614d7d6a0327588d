"""Tool-poisoning markers in a tool's texts: the patterns and the check, standard library only.

The registry's tool review (services/registry/review.py) and the sandboxed source scanner
(libs/scan) both flag tools with `poisoning_flags`; the scanner runs it inside the sandbox,
where only the standard library and this module's own package are importable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

POISON_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "hidden_instruction_tag",
        re.compile(r"<\s*/?\s*(important|system|instructions?|secret)\b", re.I),
    ),
    (
        "ignore_instructions",
        re.compile(
            r"\b(ignore|disregard|forget)\s+(all\s+)?(the\s+)?(previous|prior|above|earlier)"
            r"\s+(instructions|prompts?|rules)",
            re.I,
        ),
    ),
    (
        "conceal_from_user",
        re.compile(
            r"\b(do\s+not|don'?t|never)\s+(tell|inform|mention|reveal)"
            r"\b.{0,40}\buser\b",
            re.I,
        ),
    ),
    (
        "exfiltration_hint",
        re.compile(r"(~/\.ssh|id_rsa|\.env\b|api[_ ]?keys?\b.{0,30}\bsend)", re.I),
    ),
]
# instructions aimed at other tools or calls: "when calling X, first ...", "before using X"
_WHEN_CALLING = (
    r"\b(before|after|when(ever)?|prior\s+to|instead\s+of)\s+(you\s+)?"
    r"(call|us|invok|run|execut)\w*\s+"
)
CROSS_TOOL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (  # "before using the send_email tool", "when calling any other tool"
        "instructs_other_calls",
        re.compile(_WHEN_CALLING + r"(?!this\b)(\w+\s+){0,3}(tool|function|server)s?\b", re.I),
    ),
    (  # "when calling send_email, ...": a tool-like name (snake_case, dotted, namespaced)
        "instructs_other_calls",
        re.compile(_WHEN_CALLING + r"[`'\"]?[A-Za-z][A-Za-z0-9-]*(_|\.)[A-Za-z0-9_.-]+", re.I),
    ),
    (  # "first call X", "always pass the token parameter"
        "instructs_other_calls",
        re.compile(
            r"\b(first|always|also)\s+(call|use|invoke|run|send|pass|include|add)\b"
            r".{0,60}\b(tool|function|server|parameter|argument)s?\b",
            re.I,
        ),
    ),
]
SCHEMA_TEXT_KEYS = ("description", "title", "$comment")  # free text anywhere in a schema
SCHEMA_VALUE_KEYS = ("default", "enum", "const", "examples")  # values a model reads too
MAX_SCHEMA_DEPTH = 32
INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)


def _texts(tool: Mapping[str, Any]) -> list[str]:
    """Every text of a tool a model reads.

    Description, title, annotations' title, and in its input and output schemas, nested at any
    depth, every description, title, comment, property name, default, enum value, const and
    example."""
    texts = [tool.get("description") or "", tool.get("title") or ""]
    annotations = tool.get("annotations")
    if isinstance(annotations, Mapping) and isinstance(annotations.get("title"), str):
        texts.append(annotations["title"])
    for key in ("input_schema", "output_schema"):
        _schema_texts(tool.get(key), texts, 0)
    return [t for t in texts if t]


def _schema_texts(node: Any, out: list[str], depth: int) -> None:
    """Collect the texts of a JSON Schema node and of every node under it."""
    if depth > MAX_SCHEMA_DEPTH:
        return
    if isinstance(node, list):
        for item in node:
            _schema_texts(item, out, depth + 1)
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key in SCHEMA_TEXT_KEYS and isinstance(value, str):
            out.append(value)
        elif key in SCHEMA_VALUE_KEYS:
            _values(value, out, depth + 1)
        elif key in ("properties", "patternProperties", "$defs", "definitions"):
            if isinstance(value, Mapping):
                out.extend(str(name) for name in value)
                for sub in value.values():
                    _schema_texts(sub, out, depth + 1)
        elif isinstance(value, Mapping | list):  # items, anyOf, allOf, oneOf, not, if/then/else
            _schema_texts(value, out, depth + 1)


def _values(value: Any, out: list[str], depth: int) -> None:
    """The strings in a default, enum, const or example value."""
    if depth > MAX_SCHEMA_DEPTH:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _values(item, out, depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            out.append(str(key))
            _values(item, out, depth + 1)


def foreign_names(refs: Iterable[tuple[str, str]], separator: str = "__") -> list[str]:
    """What other servers' tools are called: bare and as the gateway lists them."""
    names: set[str] = set()
    for server, tool in refs:
        names.update((tool, f"{server}{separator}{tool}"))
    return sorted(names)


# a run of the characters a plain tool name is made of: another tool named in a text lies in one
WORD_RUN = re.compile(r"[\w.-]+")
MIN_FOREIGN = 4  # shorter names are too common words to flag


@dataclass(frozen=True)
class ForeignNames:
    """Other servers' tool names, indexed once for a whole listing.

    A plain name (only word characters, `.` and `-`) is found by looking the text's candidate
    words up in a set, so checking a tool costs time linear in its text, not in the number of
    names; any other name is searched for alone.
    """

    plain: frozenset[str] = frozenset()
    odd: tuple[str, ...] = ()
    longest: int = 0

    @classmethod
    def of(cls, names: Iterable[str] | ForeignNames) -> ForeignNames:
        """The index of `names` (the same object when it is one already)."""
        if isinstance(names, ForeignNames):
            return names
        kept = {n for n in names if len(n) >= MIN_FOREIGN}
        plain = frozenset(n for n in kept if WORD_RUN.fullmatch(n))
        return cls(plain, tuple(sorted(kept - plain)), max(map(len, plain), default=0))

    def mentioned(self, text: str, own: str | None = None) -> list[str]:
        """The names (but `own`) that `text` mentions whole: not inside a longer word."""
        found: set[str] = set()
        if self.plain:
            for run in WORD_RUN.finditer(text):
                found.update(self._words(run.group()))
        for other in self.odd:
            if re.search(rf"(?<![\w-]){re.escape(other)}(?![\w-])", text):
                found.add(other)
        return sorted(found - {own})

    def _words(self, run: str) -> Iterable[str]:
        """The known names in a run of name characters, each a whole name.

        A name is whole when it starts at the run's start or after a `.`, and ends at the run's
        end or before a `.`."""
        dots = [i for i, c in enumerate(run) if c == "."]
        ends = [*dots, len(run)]
        for start in (0, *(i + 1 for i in dots)):
            for end in ends:
                if end - start > self.longest:
                    break
                if end > start and run[start:end] in self.plain:
                    yield run[start:end]


def poisoning_flags(
    tool: Mapping[str, Any], foreign_tools: Iterable[str] | ForeignNames = ()
) -> list[str]:
    """Markers of tool poisoning in the tool's texts.

    `foreign_tools` are other servers' tools (bare names and the gateway's
    `{server}{separator}{tool}` names, see `foreign_names`)."""
    flags: list[str] = []
    text = "\n".join(_texts(tool))
    for name, pattern in POISON_PATTERNS + CROSS_TOOL_PATTERNS:
        if name not in flags and pattern.search(text):
            flags.append(name)
    if INVISIBLE.search(text) or any(unicodedata.category(c) == "Cf" for c in text):
        flags.append("invisible_unicode")
    own = tool.get("name")
    mentioned = ForeignNames.of(foreign_tools).mentioned(text, own)
    flags.extend(f"references_other_tool:{other}" for other in mentioned)
    return flags
