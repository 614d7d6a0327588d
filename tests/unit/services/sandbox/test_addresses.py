"""Address classification of the egress guard: numeric forms, internal ranges, allowlisted CIDRs."""

from __future__ import annotations

import ipaddress

import pytest

from libs.common.ssrf import embedded_ipv4, parse_address, parse_networks
from services.sandbox.addresses import AddressGuard, url_hosts


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("2852039166", "169.254.169.254"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4", "1.2.3.4"),
    ],
)
def test_every_numeric_ipv4_form_inet_aton_reads_is_normalised(text: str, address: str) -> None:
    assert parse_address(text) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize(
    "text", ["256.1.1.1", "1.2.3.4.5", "4294967296", "08", "example.com", "", "1_0.0.0.1", "١٢٧.1"]
)
def test_texts_that_are_not_ipv4_numbers_are_not_read_as_addresses(text: str) -> None:
    assert parse_address(text) is None


def test_ipv6_forms_carrying_an_ipv4_address_reveal_it() -> None:
    for text in ("::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1"):
        addr = parse_address(f"[{text}]")
        assert addr is not None and embedded_ipv4(addr) == ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2852039166", "link-local"),
    ],
)
def test_internal_addresses_in_every_form_are_refused(text: str, reason: str) -> None:
    problem = AddressGuard().literal_problem(text)
    assert problem is not None and reason in problem


def test_public_addresses_and_names_pass_and_allowlisted_cidrs_open_internal_ones() -> None:
    guard = AddressGuard(allow=parse_networks(["10.1.0.0/16", "::1/128"]))
    assert guard.literal_problem("93.184.216.34") is None
    assert guard.literal_problem("api.example.com") is None
    assert guard.literal_problem("10.1.2.3") is None
    assert guard.literal_problem("[::ffff:10.1.2.3]") is None
    assert guard.literal_problem("[::1]") is None
    assert guard.literal_problem("10.2.0.1") is not None


def test_the_platforms_own_addresses_are_refused_even_when_public_unless_allowlisted() -> None:
    platform = frozenset({ipaddress.ip_address("8.8.4.4")})
    guard = AddressGuard(platform=platform)
    assert guard.literal_problem("8.8.4.4") == "the platform's own address"
    assert guard.literal_problem("[::ffff:8.8.4.4]") == "the platform's own address"
    opened = AddressGuard(allow=parse_networks(["8.8.4.0/24"]), platform=platform)
    assert opened.literal_problem("8.8.4.4") is None


def test_a_bad_cidr_is_named_and_url_hosts_read_nats_server_lists() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        parse_networks(["10.0.0.0/33"])
    urls = [
        "postgresql://u:p@db.internal:5432/x",
        "nats://a:4222,nats://b:4222",
        "http://[::1]:8080",
    ]
    assert url_hosts(urls) == ["db.internal", "a", "b", "::1"]
