"""SSRF rules on URLs and addresses, numeric host forms included."""

import ipaddress
from urllib.parse import urlsplit

import pytest

from libs.common import ssrf


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://localhost:80/",
        "http://[::ffff:127.0.0.1]/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
    ],
)
def test_internal_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(ssrf.SsrfRefused):
        ssrf.check_url(url, [])


def test_an_allowlisted_range_is_accepted() -> None:
    allow = ssrf.parse_networks(["127.0.0.0/8"])
    assert ssrf.check_url("http://127.0.0.1:8080/mcp", allow) == "127.0.0.1"
    assert ssrf.check_url("https://example.com/mcp", []) == "example.com"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://2852039166/mcp", "169.254.169.254"),
        ("http://0xa9fea9fe/mcp", "169.254.169.254"),
        ("http://0251.0376.0251.0376/mcp", "169.254.169.254"),
        ("http://169.254.43518/mcp", "169.254.169.254"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://2130706433./", "127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "::ffff:7f00:1"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),
        ("http://[64:ff9b:1::a9fe:a9fe]/", "64:ff9b:1::a9fe:a9fe"),
        ("http://[2002:a9fe:a9fe::1]/", "2002:a9fe:a9fe::1"),
        ("http://100.64.0.1/", "100.64.0.1"),
        ("http://[fd00::1]/", "fd00::1"),
        ("http://[ff02::1]/", "ff02::1"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://0/", "0.0.0.0"),
    ],
)
def test_numeric_and_embedded_forms_are_read_as_their_address_and_refused(
    url: str, address: str
) -> None:
    host = ssrf.canonical_host(urlsplit(url).hostname or "")[0]
    assert host == address
    with pytest.raises(ssrf.SsrfRefused):
        ssrf.check_url(url, [])


def test_a_numeric_form_of_an_allowlisted_address_passes_as_that_address() -> None:
    allow = ssrf.parse_networks(["127.0.0.0/8"])
    assert ssrf.check_url("http://2130706433:9000/mcp", allow) == "127.0.0.1"
    assert ssrf.check_url("http://[::ffff:127.0.0.1]/", allow) == "::ffff:7f00:1"
    assert ssrf.check_url("http://[64:ff9b::7f00:1]/", allow) == "64:ff9b::7f00:1"


def test_a_public_address_in_any_form_passes() -> None:
    assert ssrf.check_url("http://134744072/", []) == "8.8.8.8"
    assert ssrf.check_url("http://[64:ff9b::808:808]/", []) == "64:ff9b::808:808"
    assert ssrf.check_url("https://mcp.example.com./x", []) == "mcp.example.com"


@pytest.mark.parametrize("url", ["http://1.2.3.4.5/", "http://example.099/", "http://256.1.1.1/"])
def test_a_host_that_ends_in_a_number_but_is_no_address_is_refused(url: str) -> None:
    with pytest.raises(ssrf.SsrfRefused):
        ssrf.check_url(url, [])


def test_names_that_merely_contain_digits_are_names() -> None:
    assert ssrf.check_url("http://1password.com/", []) == "1password.com"
    assert ssrf.check_url("http://a0x1.example/", []) == "a0x1.example"


def test_the_embedded_ipv4_of_every_ipv6_form_is_found() -> None:
    embedded = {
        "::ffff:169.254.169.254": "169.254.169.254",
        "64:ff9b::a9fe:a9fe": "169.254.169.254",
        "2002:a9fe:a9fe::": "169.254.169.254",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2": "192.0.2.45",
        "::169.254.169.254": "169.254.169.254",
    }
    for v6, v4 in embedded.items():
        assert str(ssrf.embedded_ipv4(ipaddress.IPv6Address(v6))) == v4
    assert ssrf.embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) is None


def test_cgnat_is_refused_with_its_own_reason() -> None:
    problem = ssrf.address_problem(ipaddress.ip_address("100.100.100.200"), [])
    assert problem is not None and "CGNAT" in problem
