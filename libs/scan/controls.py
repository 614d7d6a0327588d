"""The versioned controls catalog: one check per control over an unpacked source tree.

Each control answers passed, a message, a findings count and evidence (file:line references,
at most MAX_EVIDENCE, never a secret's value). Bump CONTROLS_CATALOG_VERSION when a control is
added, removed or judges differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libs.common import osv, poisoning
from libs.scan import deps, licenses
from libs.scan import tools as tools_mod

CONTROLS_CATALOG_VERSION = "v1.0"
MAX_EVIDENCE = 20
MAX_READ = 2 * 1024 * 1024
SECURITY, SUPPLY_CHAIN, MATURITY = "security", "supply_chain", "maturity"


@dataclass(frozen=True)
class Control:
    """A control's identity: id, name, category and the severity of its failure."""

    id: str
    name: str
    category: str
    severity: str


CATALOG: tuple[Control, ...] = (
    Control("ARCHIVE_SAFETY", "Archive Safety", SECURITY, "critical"),
    Control("SECRET_EXPOSED", "Exposed Secrets Detection", SECURITY, "critical"),
    Control("DANGEROUS_CODE_PYTHON", "Dangerous Python Code", SECURITY, "high"),
    Control("DANGEROUS_CODE_JS", "Dangerous JavaScript/TypeScript Code", SECURITY, "high"),
    Control("TOOL_POISONING", "Tool Poisoning Markers", SECURITY, "critical"),
    Control("VULNERABLE_DEPENDENCY", "Known-Vulnerable Dependencies", SECURITY, "high"),
    Control("DEPENDENCY_MANIFEST", "Dependency Manifest Present", SUPPLY_CHAIN, "medium"),
    Control("LOCKFILE_PRESENT", "Lockfile or Pinned Dependencies", SUPPLY_CHAIN, "medium"),
    Control("LICENSE_DECLARED", "SPDX License Declared", SUPPLY_CHAIN, "medium"),
    Control("README_PRESENT", "README and Documentation", MATURITY, "low"),
    Control("TESTS_PRESENT", "Tests Present", MATURITY, "low"),
    Control("CI_CONFIG", "CI Configuration Present", MATURITY, "low"),
)
BY_ID = {c.id: c for c in CATALOG}

JS_SUFFIXES = tools_mod.JS_SUFFIXES
JS_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("eval", re.compile(r"(?<![\w.$])eval\s*\(")),
    ("new_function", re.compile(r"\bnew\s+Function\s*\(")),
    (
        "child_process_exec_concat",
        re.compile(r"\b(exec|execSync)\s*\(\s*(`[^`]*\$\{|[^,)]*['\"]\s*\+|[A-Za-z_$][\w$]*\s*\+)"),
    ),
    ("child_process_shell", re.compile(r"\b(spawn|spawnSync|execFile)\s*\([^)]*shell\s*:\s*true")),
    ("string_timer", re.compile(r"\bset(Timeout|Interval)\s*\(\s*['\"`]")),
    ("vm_run", re.compile(r"\bvm\.run(InNewContext|InThisContext|InContext)\s*\(")),
)
CI_PATHS = (".github/workflows/", ".gitlab-ci.yml", ".circleci/", "azure-pipelines.yml",
            ".travis.yml", "Jenkinsfile", ".drone.yml", "bitbucket-pipelines.yml",
            ".buildkite/", ".woodpecker.yml")  # fmt: skip
TEST_DIRS = ("tests/", "test/", "__tests__/", "spec/")
TEST_FILE = re.compile(
    r"(^|/)(test_[^/]+\.py|[^/]+_test\.(py|go)|[^/]+\.(test|spec)\.[cm]?[jt]sx?)$"
)


@dataclass
class Result:
    """One control's outcome."""

    control: Control
    passed: bool
    message: str
    findings: int = 0
    evidence: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report's form of the result."""
        return {
            "control_id": self.control.id,
            "control_name": self.control.name,
            "control_category": self.control.category,
            "severity": self.control.severity,
            "passed": self.passed,
            "message": self.message,
            "findings": self.findings,
            "evidence": self.evidence[:MAX_EVIDENCE],
        }


@dataclass
class Tree:
    """The unpacked source: its root, files (sorted relative paths) and the advisory set."""

    root: Path
    files: list[str]
    advisories: osv.Advisories
    tools: list[dict[str, Any]] = field(default_factory=list)
    license: str | None = None


def _text(tree: Tree, rel: str) -> str:
    """A file's text ('' when unreadable)."""
    try:
        with open(tree.root / rel, "rb") as fh:
            return fh.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _vendored(rel: str) -> bool:
    """Third-party or generated trees a scan does not judge the source by."""
    return any(
        part in ("node_modules", ".git", "vendor", "dist", "build", ".venv")
        for part in rel.split("/")[:-1]
    )


def _result(cid: str, findings: list[dict[str, Any]], ok: str, bad: str) -> Result:
    """A result that fails when there are findings."""
    count = len(findings)
    return Result(BY_ID[cid], count == 0, ok if count == 0 else bad.format(n=count), count,
                  findings)  # fmt: skip


def secret_exposed(tree: Tree) -> Result:
    """detect-secrets over every file; evidence names the type and line, never the value."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    findings = []
    collection = SecretsCollection(root=str(tree.root))
    with default_settings():
        for rel in tree.files:
            if not _vendored(rel):
                collection.scan_file(rel)
    for filename, secret in collection:
        findings.append(
            {"file": filename, "line": secret.line_number, "detail": f"{secret.type} [REDACTED]"}
        )
    findings.sort(key=lambda f: (f["file"], f["line"], f["detail"]))
    return _result("SECRET_EXPOSED", findings, "No secrets detected in the source.",
                   "{n} possible secret(s) found in the source.")  # fmt: skip


def dangerous_python(tree: Tree) -> Result:
    """Bandit on the Python files: issues of medium or high severity and confidence."""
    import logging
    import warnings

    logging.getLogger("bandit").setLevel(logging.CRITICAL)
    paths = [str(tree.root / f) for f in tree.files if f.endswith(".py") and not _vendored(f)]
    findings = []
    issues = []
    if paths:
        with warnings.catch_warnings():  # stevedore's deprecation notes while bandit loads plugins
            warnings.simplefilter("ignore", DeprecationWarning)
            from bandit.core import config as bandit_config
            from bandit.core import manager as bandit_manager

            mgr = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
            mgr.discover_files(paths, recursive=False)
            mgr.run_tests()
            issues = mgr.get_issue_list(sev_level="MEDIUM", conf_level="MEDIUM")
        for issue in issues:
            rel = str(Path(issue.fname).relative_to(tree.root))
            detail = f"{issue.test_id} {issue.severity.lower()}: {issue.text}"[:300]
            findings.append({"file": rel, "line": issue.lineno, "detail": detail})
    findings.sort(key=lambda f: (f["file"], f["line"], f["detail"]))
    return _result("DANGEROUS_CODE_PYTHON", findings, "bandit found no dangerous Python code.",
                   "bandit found {n} dangerous pattern(s) in Python code.")  # fmt: skip


def dangerous_js(tree: Tree) -> Result:
    """Patterns of code execution in JavaScript/TypeScript (eval, new Function, shell exec)."""
    findings = []
    for rel in tree.files:
        if not rel.endswith(JS_SUFFIXES) or _vendored(rel) or rel.endswith(".min.js"):
            continue
        for number, line in enumerate(_text(tree, rel).splitlines(), start=1):
            for name, pattern in JS_PATTERNS:
                if pattern.search(line):
                    findings.append({"file": rel, "line": number, "detail": name})
    return _result("DANGEROUS_CODE_JS", findings, "No dangerous JavaScript/TypeScript patterns.",
                   "{n} dangerous JavaScript/TypeScript pattern(s).")  # fmt: skip


def tool_poisoning(tree: Tree) -> Result:
    """The registry's poisoning check on every tool the source declares."""
    findings = []
    names = [t["name"] for t in tree.tools]
    for tool in tree.tools:
        subject = tool.get("definition") or {
            "name": tool["name"],
            "description": tool["description"],
        }
        others = [n for n in names if n != tool["name"]]
        flags = poisoning.poisoning_flags(subject, others)
        if flags:
            file, _, line = tool["source"].partition(":")
            findings.append(
                {
                    "file": file,
                    "line": int(line) if line.isdigit() else None,
                    "detail": f"tool {tool['name']!r}: {', '.join(flags)}",
                }  # fmt: skip
            )
    result = _result("TOOL_POISONING", findings,
                     f"No poisoning markers in {len(tree.tools)} tool description(s).",
                     "{n} tool description(s) carry poisoning markers.")  # fmt: skip
    result.extra["tools"] = len(tree.tools)
    return result


def vulnerable_dependency(tree: Tree) -> Result:
    """Pinned dependencies matched against the OSV advisory set."""
    findings = []
    for dep in deps.dependencies(tree.root, tree.files):
        for match in tree.advisories.matches(dep.ecosystem, dep.name, dep.version):
            findings.append(
                {
                    "file": dep.file,
                    "line": None,
                    "detail": f"{dep.ecosystem} {dep.name}=={dep.version}: {match.id} "
                    f"({match.severity}) {match.summary}"[:300],
                }  # fmt: skip
            )
    return _result("VULNERABLE_DEPENDENCY", findings,
                   f"No known-vulnerable dependency ({tree.advisories.count} advisories).",
                   "{n} dependency version(s) with known vulnerabilities.")  # fmt: skip


def dependency_manifest(tree: Tree) -> Result:
    """A requirements.txt, pyproject.toml, package.json ... at any depth (vendored trees aside)."""
    found = [f for f in deps.manifests(tree.files) if not _vendored(f)]
    ok = bool(found)
    message = f"Dependency manifest: {found[0]}." if ok else "No dependency manifest found."
    return Result(BY_ID["DEPENDENCY_MANIFEST"], ok, message, 0 if ok else 1,
                  [{"file": f, "line": None, "detail": "manifest"} for f in found])  # fmt: skip


def lockfile_present(tree: Tree) -> Result:
    """A lockfile, or requirements that pin every line."""
    found = [f for f in deps.lockfiles(tree.root, tree.files) if not _vendored(f)]
    ok = bool(found)
    message = f"Locked dependencies: {found[0]}." if ok else "No lockfile or pinned requirements."
    return Result(BY_ID["LOCKFILE_PRESENT"], ok, message, 0 if ok else 1,
                  [{"file": f, "line": None, "detail": "lockfile"} for f in found])  # fmt: skip


def license_declared(tree: Tree) -> Result:
    """An SPDX expression from package.json, pyproject.toml or the LICENSE file, validated."""
    found = licenses.declared(tree.root, tree.files)
    control = BY_ID["LICENSE_DECLARED"]
    if found is None:
        return Result(control, False, "No license declared.", 1)
    expression, source = found
    normalised, error = licenses.normalise(expression)
    evidence = [{"file": source, "line": None, "detail": normalised or expression}]
    if normalised is None:
        return Result(control, False, f"License {expression!r} is not SPDX: {error}", 1, evidence)
    tree.license = normalised
    return Result(control, True, f"License {normalised} ({source}).", 0, evidence,
                  {"license": normalised})  # fmt: skip


def readme_present(tree: Tree) -> Result:
    """A README at the root; a docs/ directory or a long README counts as documentation."""
    readmes = [f for f in tree.files if "/" not in f and f.lower().startswith("readme")]
    docs = [f for f in tree.files if f.startswith(("docs/", "doc/"))]
    size = len(_text(tree, readmes[0])) if readmes else 0
    level = 0 if not readmes else (100 if docs or size >= 1500 else 70)
    message = (
        f"README present ({readmes[0]}, {size} characters)" + (", docs/ too." if docs else ".")
        if readmes
        else "No README at the source root."
    )
    evidence = [{"file": f, "line": None, "detail": "documentation"} for f in readmes + docs]
    return Result(BY_ID["README_PRESENT"], bool(readmes), message, 0 if readmes else 1, evidence,
                  {"documentation": level})  # fmt: skip


def tests_present(tree: Tree) -> Result:
    """A tests/ directory or test files."""
    found = [
        f for f in tree.files
        if not _vendored(f) and (f.startswith(TEST_DIRS) or f"/{f}".count("/tests/")
                                 or TEST_FILE.search(f))
    ]  # fmt: skip
    ok = bool(found)
    message = f"{len(found)} test file(s)." if ok else "No tests found."
    return Result(BY_ID["TESTS_PRESENT"], ok, message, 0 if ok else 1,
                  [{"file": f, "line": None, "detail": "test"} for f in found])  # fmt: skip


def ci_config(tree: Tree) -> Result:
    """A CI configuration (.github/workflows, .gitlab-ci.yml, ...)."""
    found = [f for f in tree.files if f.startswith(CI_PATHS) or f in CI_PATHS]
    ok = bool(found)
    message = f"CI configuration: {found[0]}." if ok else "No CI configuration found."
    return Result(BY_ID["CI_CONFIG"], ok, message, 0 if ok else 1,
                  [{"file": f, "line": None, "detail": "ci"} for f in found])  # fmt: skip


def archive_safety(refused: str | None) -> Result:
    """What the extraction guards refused (a refused archive fails the whole scan)."""
    control = BY_ID["ARCHIVE_SAFETY"]
    if refused:
        return Result(control, False, f"Archive refused: {refused}", 1)
    return Result(control, True, "The archive unpacked within the guards.")


CHECKS: tuple[Callable[[Tree], Result], ...] = (
    secret_exposed,
    dangerous_python,
    dangerous_js,
    tool_poisoning,
    vulnerable_dependency,
    dependency_manifest,
    lockfile_present,
    license_declared,
    readme_present,
    tests_present,
    ci_config,
)


def run_all(tree: Tree) -> list[Result]:
    """Every control of the catalog, in catalog order (the archive already passed its guards)."""
    tree.tools = tools_mod.extract(tree.root, tree.files)
    results = [archive_safety(None)] + [check(tree) for check in CHECKS]
    order = {c.id: i for i, c in enumerate(CATALOG)}
    return sorted(results, key=lambda r: order[r.control.id])
