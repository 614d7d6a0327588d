"""Module installs checked against OSV advisories; scan reports cut to fit one NATS message."""

from __future__ import annotations

from pathlib import Path

import orjson

from libs.common import osv
from services.sandbox import modules, scanning

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


def test_a_scan_report_over_the_nats_limit_is_cut_to_fit() -> None:
    big = "x" * 50_000
    tools = [
        {"name": f"t{i}", "description": big, "description_sha256": "h", "definition": {"d": big}}
        for i in range(40)
    ]
    report = scanning.fit({"global_score": 90, "tools": tools})
    assert len(orjson.dumps(report)) <= scanning.MAX_REPLY_BYTES
    assert report["tools_truncated"] and report["global_score"] == 90
    assert all("definition" not in t and len(t["description"]) <= 2000 for t in report["tools"])
    assert len(report["tools"]) == 40
    small = {"global_score": 90, "tools": tools[:1]}
    assert scanning.fit(small) is small
