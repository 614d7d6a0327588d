"""Host and Origin checks against DNS rebinding (libs/common/trusted_hosts.py)."""

from libs.common.trusted_hosts import TrustedHosts, hostname, origin_hostname

PUBLIC = TrustedHosts.of("https://mcp.example.com", ("gateway.internal",), ("https://app.example",))


def test_host_names_are_parsed_without_port_and_in_lower_case() -> None:
    assert hostname("MCP.Example.com:8443") == "mcp.example.com"
    assert hostname("[::1]:8080") == "::1"
    assert hostname("127.0.0.1") == "127.0.0.1"


def test_malformed_host_headers_name_no_host() -> None:
    for bad in ("", ":80", "a.com:x", "[::1", "[::1]x", "evil.com@127.0.0.1", "a b", "a/b"):
        assert hostname(bad) is None, bad


def test_an_origin_names_its_host_and_nothing_else_is_an_origin() -> None:
    assert origin_hostname("https://App.Example:444") == "app.example"
    for bad in ("null", "file://", "ftp://a.com", "https://a.com/path", "https://u@a.com"):
        assert origin_hostname(bad) is None, bad


def test_the_public_host_loopback_names_and_configured_hosts_are_trusted() -> None:
    for host in ("mcp.example.com", "localhost:8080", "127.0.0.1:5", "[::1]", "gateway.internal"):
        assert not PUBLIC.host_refused(host), host
    for host in ("evil.example.com", "mcp.example.com.evil.example", "example.com", "[::2]"):
        assert PUBLIC.host_refused(host), host


def test_a_request_without_host_or_origin_is_not_a_browser_s_and_passes() -> None:
    assert not PUBLIC.host_refused(None)
    assert not PUBLIC.origin_refused(None)


def test_origins_of_trusted_hosts_and_allowed_origins_pass_others_are_refused() -> None:
    for origin in ("https://mcp.example.com", "http://localhost:3000", "https://app.example/"):
        assert not PUBLIC.origin_refused(origin), origin
    for origin in ("http://evil.example.com", "null", "https://app.example.evil", "https://x@a.b"):
        assert PUBLIC.origin_refused(origin), origin


def test_a_star_lifts_each_check() -> None:
    open_hosts = TrustedHosts.of("http://localhost:8080", ("*",), ("*",))
    assert not open_hosts.host_refused("anything.example")
    assert not open_hosts.origin_refused("https://anything.example")
