"""Running the official conformance CLI and reading what it found.

The CLI is npm @modelcontextprotocol/conformance; it writes one directory per scenario under its
`-o` output dir, each with a `checks.json`."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tests.support import node

SESSION_CLI = node.NODE_MODULES / "conformance-session" / "dist" / "index.js"  # 0.1.16
STATELESS_CLI = node.NODE_MODULES / "conformance-stateless" / "dist" / "index.js"  # 0.2.0-alpha.12
# `server-<scenario>-<ISO timestamp with dashes>`
RUN_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")
RAN = re.compile(r"Running .* \((?P<count>\d+) scenarios\)")


@dataclass
class SuiteRun:
    """One CLI run: the scenarios it announced, and the failed checks of each scenario it saved."""

    announced: int
    failures: dict[str, list[str]]  # scenario -> "check-id: message" of each FAILURE
    output: str

    @property
    def passed(self) -> set[str]:
        """Scenarios saved without a failed check."""
        return {name for name, failed in self.failures.items() if not failed}

    def describe(self, scenarios: set[str]) -> str:
        """The failed checks of `scenarios`, one line each (a scenario never saved says so)."""
        lines = []
        for name in sorted(scenarios):
            for check in self.failures.get(name, ["(no result saved: the scenario did not run)"]):
                lines.append(f"  {name}: {check}")
        return "\n".join(lines)


def read_results(out_dir: Path) -> dict[str, list[str]]:
    """Each scenario's failed checks, from the CLI's output directory."""
    results: dict[str, list[str]] = {}
    for checks_file in sorted(out_dir.glob("*/checks.json")):
        match = RUN_DIR.match(checks_file.parent.name)
        if match is None:
            continue
        checks = json.loads(checks_file.read_text())
        results[match["scenario"]] = [
            f"{c.get('id')}: {c.get('errorMessage') or c.get('description')}"
            for c in checks
            if c.get("status") == "FAILURE"
        ]
    return results


async def run_suite(
    cli: Path, url: str, out_dir: Path, *args: str, timeout_s: float = 150
) -> SuiteRun:
    """Run `cli server --url url -o out_dir *args` with Node 22; return what it found."""
    node.installed()
    proc = await asyncio.create_subprocess_exec(
        str(node.NODE22),
        str(cli),
        "server",
        "--url",
        url,
        "-o",
        str(out_dir),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout_s):
            stdout, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = stdout.decode(errors="replace")
    announced = RAN.search(output)
    assert announced, f"the conformance CLI announced no scenarios:\n{output[-3000:]}"
    return SuiteRun(int(announced["count"]), read_results(out_dir), output)
