"""OSV advisories: loading a directory or a file, and range/version matching for PyPI and npm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.common import osv

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "osv"


@pytest.fixture(scope="module")
def advisories() -> osv.Advisories:
    return osv.load(FIXTURES)


def ids(matches: list[osv.Match]) -> list[str]:
    return [m.id for m in matches]


def test_a_directory_of_records_and_lists_loads_every_record(advisories: osv.Advisories) -> None:
    assert advisories.count == 4
    assert [r["id"] for r in advisories.records()] == sorted(r["id"] for r in advisories.records())


@pytest.mark.parametrize(
    ("version", "affected"),
    [("0.1", True), ("2.19.1", True), ("2.20.0", False), ("2.31.0", False), ("2.20.0rc1", True)],
)
def test_pypi_ecosystem_ranges_open_at_introduced_and_close_at_fixed(
    advisories: osv.Advisories, version: str, affected: bool
) -> None:
    found = advisories.matches(osv.PYPI, "requests", version)
    assert ids(found) == (["GHSA-sb01-test-reqs"] if affected else [])


def test_pypi_names_compare_normalised_and_severity_words_map(advisories: osv.Advisories) -> None:
    found = advisories.matches(osv.PYPI, "Requests", "2.0.0")
    assert found[0].severity == "medium" and found[0].aliases == ("CVE-2018-18074",)
    assert ids(advisories.matches(osv.PYPI, "jinja2", "2.10.1")) == ["PYSEC-sb04-test-jinja"]
    # listed versions only: the GIT range is not read as covering every release
    assert advisories.matches(osv.PYPI, "jinja2", "3.1.4") == []


@pytest.mark.parametrize(
    ("version", "affected"),
    [("4.17.20", True), ("4.17.21", False), ("5.0.0", False), ("4.17.21-beta.1", True)],
)
def test_npm_semver_ranges(advisories: osv.Advisories, version: str, affected: bool) -> None:
    assert bool(advisories.matches(osv.NPM, "lodash", version)) is affected


@pytest.mark.parametrize(
    ("version", "affected"), [("0.9.0", False), ("1.0.0", True), ("1.2.5", True), ("1.2.6", False)]
)
def test_last_affected_is_inclusive(
    advisories: osv.Advisories, version: str, affected: bool
) -> None:
    assert bool(advisories.matches(osv.NPM, "minimist", version)) is affected


def test_other_ecosystems_and_unparsable_versions_match_nothing(advisories: osv.Advisories) -> None:
    assert advisories.matches(osv.NPM, "requests", "1.0.0") == []
    assert advisories.matches(osv.PYPI, "requests", "not a version!") == []


def test_one_json_list_file_loads_and_bad_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    path.write_text(json.dumps(json.loads((FIXTURES / "npm.json").read_text())))
    assert osv.load(path).count == 3
    with pytest.raises(osv.OsvError):
        osv.load(tmp_path / "missing")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(osv.OsvError):
        osv.load(bad)
    (tmp_path / "noid.json").write_text('{"summary": "no id"}')
    with pytest.raises(osv.OsvError):
        osv.load(tmp_path / "noid.json")


def test_semver_orders_prereleases_before_their_release() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-rc.1", "1.0.0"]
    parsed = [osv.SemVer.parse(v) for v in order]
    assert parsed == sorted(parsed)
    with pytest.raises(ValueError):
        osv.SemVer.parse("latest")
