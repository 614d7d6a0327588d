"""Allowlist entries: canonical forms, wildcards of named domains only, and what each matches."""

from __future__ import annotations

import pytest

from services.sandbox.allowlist import allows, normalise


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("API.Example.com.", "api.example.com"),
        ("*.example.com", "*.example.com"),
        ("api.example.com:443", "api.example.com:443"),
        ("2852039166:80", "169.254.169.254:80"),
        ("0x7f000001", "127.0.0.1"),
        ("[::FFFF:127.0.0.1]:4222", "[::ffff:7f00:1]:4222"),
        ("::1", "::1"),
    ],
)
def test_entries_are_stored_in_canonical_form(text: str, canonical: str) -> None:
    assert normalise(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "*",
        "*.*",
        "*.com",
        "*:443",
        "*.example.*",
        "a*.example.com",
        "ex ample.com",
        "h:0",
        "h:x",
        "h:70000",
        "-a.example.com",
        "1.2.3.4.5",
        "http://evil/",
        "[::1]x",
        "",
    ],
)
def test_wildcards_of_everything_and_malformed_entries_are_not_hosts(text: str) -> None:
    with pytest.raises(ValueError):
        normalise(text)


def test_entries_match_names_subdomains_ports_and_numeric_forms_of_the_same_address() -> None:
    entries = ["*.example.com", "h:8080", "169.254.169.254"]
    assert allows(entries, "api.example.com", 443)
    assert not allows(entries, "example.com", 443)
    assert not allows(entries, "example.org", 443)
    assert allows(entries, "H", 8080) and not allows(entries, "h", 80)
    assert allows(entries, "2852039166", 80)


def test_stored_entries_that_no_longer_parse_allow_nothing() -> None:
    assert not allows(["*", "*:*", "*.com"], "api.example.com", 443)
