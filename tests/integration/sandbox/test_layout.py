"""A checkout below a directory other users cannot enter (a 0700 home, `mktemp -d`).

Sandboxes run as uids of their own and cannot reach such a checkout's packages, helpers, work
root or fixtures: the layout moves or stages them, and the self-test names what it cannot fix.
"""

from __future__ import annotations

import shutil
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.common.errors import UpstreamError
from services.sandbox import isolation, layout, selftest
from services.sandbox.layout import drops_privileges, ensure_dir, plan
from services.sandbox.processes import ProcessManager
from services.sandbox.server_spec import ServerSpec
from services.sandbox.settings import SandboxSettings
from tests.integration.sandbox.conftest import ECHO_SERVER, WORK_ROOT


@pytest.fixture
def closed_dir() -> Iterator[Path]:
    """A fresh 0700 directory, as `mktemp -d` makes."""
    path = Path(tempfile.mkdtemp(prefix="sbtest-closed-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def work_root() -> Iterator[Path]:
    """A work root every sandbox uid can reach."""
    path = Path(tempfile.mkdtemp(prefix="wr-", dir=ensure_parent()))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ensure_parent() -> Path:
    """The tests' shared work-root parent, reachable by sandbox uids."""
    ensure_dir(WORK_ROOT)
    return WORK_ROOT


def test_the_directory_that_blocks_a_path_is_named_with_its_mode(closed_dir: Path) -> None:
    inner = closed_dir / "a" / "b"
    inner.mkdir(parents=True)
    why = layout.blocker(inner)
    assert why is not None and str(closed_dir) in why and "0700" in why
    closed_dir.chmod(0o711)
    assert layout.blocker(inner) is None
    assert layout.blocker(closed_dir, read=False) is None
    assert "0711" in (layout.blocker(closed_dir) or "")  # listing it needs read


def test_the_default_work_root_below_a_closed_directory_moves_where_sandboxes_reach_it(
    closed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(closed_dir)  # the default work root is .run/sandbox below the cwd
    planned = plan(SandboxSettings(), "relocation-test")
    try:
        assert planned.problems == ()
        if drops_privileges():
            assert not planned.work_root.is_relative_to(closed_dir)
            assert layout.blocker(planned.work_root, read=False) is None
            assert any(str(closed_dir) in note for note in planned.notes)
        else:  # sandboxes run as our own uid, which reaches the checkout
            assert planned.work_root == closed_dir / ".run" / "sandbox"
    finally:
        planned.remove_stage()
        if not planned.work_root.is_relative_to(closed_dir):
            shutil.rmtree(planned.work_root, ignore_errors=True)


async def test_an_explicit_work_root_out_of_reach_fails_the_self_test_naming_the_directory(
    closed_dir: Path,
) -> None:
    settings = SandboxSettings(work_root=str(closed_dir / "work"))
    planned = plan(settings, "explicit-test")
    ensure_dir(planned.work_root / "runs")
    tier, _ = isolation.probe_tier(settings)
    report = await selftest.run(settings, planned, tier)
    if not drops_privileges():
        assert report.ok, report.cause
        return
    assert not report.ok
    assert str(closed_dir) in report.cause and "SANDBOX_WORK_ROOT" in report.cause
    failed = {c.name for c in report.checks if not c.ok}
    assert {"layout", "hosted_server", "code_run"} <= failed  # the processes fail for real
    assert "denied" in report.cause.lower()


async def test_packages_helpers_and_servers_below_a_closed_directory_run_in_the_sandbox(
    closed_dir: Path, work_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = closed_dir / "venv" / "site-packages"
    shutil.copytree(sysconfig.get_paths()["purelib"], packages, copy_function=_link)
    monkeypatch.setattr(layout, "SUPPORT", _copy(layout.SUPPORT, closed_dir / "inside"))
    fixtures = closed_dir / "fixtures"
    server = _copy(Path(ECHO_SERVER), fixtures / "echo_server.py")
    settings = SandboxSettings(
        work_root=str(work_root), python_packages=str(packages), ro_paths=(str(fixtures),)
    )
    planned = plan(settings, "closed-test")
    for sub in ("runs", "servers"):
        ensure_dir(planned.work_root / sub)
    tier, _ = isolation.probe_tier(settings)
    try:
        report = await selftest.run(settings, planned, tier)
        assert report.ok, report.cause
        if drops_privileges():
            staged = " ".join(planned.notes)
            assert all(str(p) in staged for p in (packages, closed_dir / "inside", fixtures))
        manager = ProcessManager(settings, planned, tier, on_status=_ignore)
        spec = ServerSpec(name="closed-echo", command="python3", args=(str(server),))
        try:
            reply = await manager.call(spec, _echo("from a closed checkout"))
        finally:
            await manager.close()
        assert reply["result"]["content"][0]["text"] == "from a closed checkout"
    finally:
        planned.remove_stage()


def _link(src: str, dst: str) -> None:
    """Hard-link one file (a copy of the venv without copying 140 MB)."""
    Path(dst).hardlink_to(src)


def _copy(source: Path, target: Path) -> Path:
    """Copy a file or tree to target; return target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target


async def _ignore(_: dict[str, Any]) -> None:
    """A status hook that records nothing."""


def _echo(text: str) -> dict[str, Any]:
    """A tools/call of the echo fixture's `echo`."""
    params = {"name": "echo", "arguments": {"text": text}}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


async def test_a_server_that_cannot_start_fails_with_what_bwrap_said(closed_dir: Path) -> None:
    settings = SandboxSettings(work_root=str(closed_dir / "work"))
    planned = plan(settings, "unreachable-test")
    ensure_dir(planned.work_root / "servers")
    tier, _ = isolation.probe_tier(settings)
    manager = ProcessManager(settings, planned, tier, on_status=_ignore)
    spec = ServerSpec(name="unreachable-echo", command="python3", args=(ECHO_SERVER,))
    try:
        if not drops_privileges():  # our own uid reaches the work root: it starts
            assert (await manager.call(spec, _echo("x")))["result"]["isError"] is False
            return
        with pytest.raises(UpstreamError) as failed:
            await manager.call(spec, _echo("x"))
    finally:
        await manager.close()
    assert "bwrap" in str(failed.value) and str(closed_dir) in str(failed.value)
