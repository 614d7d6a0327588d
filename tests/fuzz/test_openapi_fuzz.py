"""schemathesis against every service's OpenAPI document, through nginx: no request is a 5xx.

Each service serves `/openapi.json` with the schemas its handlers use (libs/common/openapi.py);
schemathesis generates requests from them (examples at the edges of every constraint, then
random ones) and sends them through nginx with the platform admin's token, on a stack of this
module's own (it creates, changes and deletes whatever the schemas let it). Bounded in time:
SECONDS per service (about as many as it has operations to cover), REQUEST_TIMEOUT_S per
request; the seed is fixed, so a run repeats the last one's cases first.

Alone: `.venv/bin/pytest tests/fuzz` (about 90 s); `FUZZ_SCALE=10` multiplies the time and the
examples per operation for a deeper run (`FUZZ_SCALE=10 make test-fuzz`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.devstack import postgres
from libs.devstack.services import SERVICES
from libs.devstack.stack import Stack
from tests.e2e.conftest import running_stack

ADMIN_TOKEN = f"sba_{secrets.token_urlsafe(24)}"
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
MAX_EXAMPLES = round(10 * SCALE)
SECONDS = {
    service: round(seconds * SCALE)
    for service, seconds in {
        "auth": 25,
        "registry": 15,
        "gateway": 8,
        "sandbox": 15,
        "audit": 12,
    }.items()
}
REQUEST_TIMEOUT_S = 10
# operations that would end the run's own credential (they are tested elsewhere)
EXCLUDED_PATHS = ("/api/v1/auth/admin-token/rotate",)
ST = Path(sys.executable).with_name("st")


@pytest.fixture(scope="module")
async def fuzz_stack(pg_server: postgres.Postgres, namespace: str) -> AsyncIterator[Stack]:
    """A stack for the fuzzer alone, its admin token known."""
    env = {"SWITCHBOARD_ADMIN_TOKEN": ADMIN_TOKEN}
    async with running_stack(pg_server, namespace, "fuzz", env) as stack:
        yield stack


@pytest.mark.parametrize("service", SERVICES)
async def test_no_generated_request_makes_a_service_answer_5xx(
    fuzz_stack: Stack, service: str, tmp_path: Path
) -> None:
    replica = fuzz_stack.replicas_of(service)[0]
    argv = [
        str(ST),
        "run",
        f"{replica.url}/openapi.json",
        "--url",
        fuzz_stack.url,
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        "not_a_server_error",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(SECONDS[service]),
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        # one worker: with two threads, hypothesis's ast.parse of a filter lambda can raise
        # "SystemError: AST constructor recursion depth mismatch" on CPython 3.11 (a race in
        # the interpreter, python/cpython#106905), which aborts a phase as a runtime error
        "--workers",
        "1",
        "--seed",
        "1",  # the same cases every run: a failure is reproducible
        "--no-color",
        *(arg for path in EXCLUDED_PATHS for arg in ("--exclude-path", path)),
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(600):
        out, _ = await proc.communicate()
    report = out.decode(errors="replace")
    summary = [line for line in report.splitlines() if "generated" in line]
    assert proc.returncode == 0, (
        f"{service}: schemathesis found server errors:\n{failures(report)}\n"
        f"what the stack logged as errors:\n{logged_errors(fuzz_stack)}"
    )
    assert summary, f"{service}: schemathesis generated nothing:\n{report[-3000:]}"


def failures(report: str) -> str:
    """The report's failure section, else its end.

    The section holds each failing request, its answer and a curl to repeat it."""
    start = report.find("= FAILURES =")
    end = report.find("= SUMMARY =")
    if start < 0:
        return report[-6000:]
    return report[start : end if end > start else None][:12000]


def logged_errors(stack: Stack) -> str:
    """Error lines of every replica's and nginx's log (a 5xx's cause is there)."""
    lines = []
    for path in stack.log_files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if any(mark in line for mark in ("error", "Error", "Traceback", '" 50')):
                lines.append(f"{path.name}: {line}")
    return "\n".join(lines[-60:])
