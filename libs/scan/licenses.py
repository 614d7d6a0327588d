"""The license a source declares, as an SPDX expression validated by license-expression."""

from __future__ import annotations

import json
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING",
                 "LICENSE-MIT", "LICENSE-APACHE")  # fmt: skip
SPDX_TAG = re.compile(r"SPDX-License-Identifier:\s*([^\n*]+)")
# the first lines of the common license texts, to their SPDX ids
TEXT_MARKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*MIT License|Permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"Apache License,?\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"GNU AFFERO GENERAL PUBLIC LICENSE\s+Version 3", re.I), "AGPL-3.0-only"),
    (re.compile(r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 3", re.I), "LGPL-3.0-only"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version 3", re.I), "GPL-3.0-only"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version 2", re.I), "GPL-2.0-only"),
    (re.compile(r"Mozilla Public License,?\s+(Version|v\.?)\s*2\.0", re.I), "MPL-2.0"),
    (re.compile(r"BSD 3-Clause|Neither the name of", re.I), "BSD-3-Clause"),
    (re.compile(r"BSD 2-Clause|Redistribution and use in source and binary forms", re.I),
     "BSD-2-Clause"),
    (re.compile(r"ISC License|Permission to use, copy, modify, and(/or)? distribute", re.I), "ISC"),
    (re.compile(r"This is free and unencumbered software released into the public domain", re.I),
     "Unlicense"),
)  # fmt: skip


def _read(root: Path, rel: str) -> str:
    """A file's text (first 256 KiB), '' when unreadable."""
    try:
        with open(root / rel, "rb") as fh:
            return fh.read(256 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _from_package_json(text: str) -> str | None:
    """package.json `license` (a string, or the old {"type": ...} object)."""
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return None
    value = doc.get("license") if isinstance(doc, dict) else None
    if isinstance(value, dict):
        value = value.get("type")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _from_pyproject(text: str) -> str | None:
    """[project] license (PEP 639 string, or {text = ...}) or license-expression."""
    try:
        project = tomllib.loads(text).get("project") or {}
    except (tomllib.TOMLDecodeError, ValueError):
        return None
    value = project.get("license-expression") or project.get("license")
    if isinstance(value, dict):
        value = value.get("text")
    if isinstance(value, str) and value.strip() and "\n" not in value.strip():
        return value.strip()
    return None


def _from_text(text: str) -> str | None:
    """An SPDX tag in the file, or the license its opening words name."""
    tag = SPDX_TAG.search(text)
    if tag:
        return tag.group(1).strip()
    head = text[:4000]
    for pattern, spdx in TEXT_MARKS:
        if pattern.search(head):
            return spdx
    return None


def declared(root: Path, files: list[str]) -> tuple[str, str] | None:
    """(expression, file) from package.json, pyproject.toml, then a LICENSE file at the root."""
    present = set(files)
    if "package.json" in present and (found := _from_package_json(_read(root, "package.json"))):
        return found, "package.json"
    if "pyproject.toml" in present and (found := _from_pyproject(_read(root, "pyproject.toml"))):
        return found, "pyproject.toml"
    for name in LICENSE_FILES:
        if name in present and (found := _from_text(_read(root, name))):
            return found, name
    for name in LICENSE_FILES:
        if name in present:
            return "LicenseRef-unrecognised", name
    return None


@lru_cache(maxsize=1)
def _licensing() -> Any:
    """The SPDX licensing of license-expression (its bundled license index)."""
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def normalise(expression: str) -> tuple[str | None, str | None]:
    """(the normalised SPDX expression, None) or (None, why it is not one)."""
    info = _licensing().validate(expression, strict=False)
    if info.errors or info.invalid_symbols:
        why = "; ".join(list(info.errors) + [f"unknown {s}" for s in info.invalid_symbols])
        return None, why[:300]
    return info.normalized_expression, None
