"""SSRF rules on URLs."""

import pytest

from services.registry import ssrf


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
