"""Module installs are checked against the OSV advisories: what a package dir holds, matched."""

from __future__ import annotations

from pathlib import Path

from libs.common import osv
from services.sandbox import modules

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "osv"


def site(tmp_path: Path, *dists: str) -> Path:
    for dist in dists:
        (tmp_path / f"{dist}.dist-info").mkdir(parents=True)
    return tmp_path


def test_a_vulnerable_dependency_in_the_install_is_named_with_its_advisory(tmp_path: Path) -> None:
    target = site(tmp_path, "requests-2.19.1", "six-1.16.0", "Jinja2-3.1.4")
    found = modules.vulnerable(target, osv.load(FIXTURES))
    assert found == [
        {
            "package": "requests",
            "version": "2.19.1",
            "id": "GHSA-sb01-test-reqs",
            "summary": "Test advisory: requests sends Authorization headers to redirected hosts",
        }
    ]


def test_fixed_versions_pass(tmp_path: Path) -> None:
    target = site(tmp_path, "requests-2.32.3", "jinja2-3.1.4")
    assert modules.vulnerable(target, osv.load(FIXTURES)) == []
    assert modules.distributions(target) == [("jinja2", "3.1.4"), ("requests", "2.32.3")]
