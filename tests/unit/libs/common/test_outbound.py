"""Guarded httpx2 clients: what each new one costs."""

from libs.common.outbound import Guard, GuardTransport


def test_guarded_transports_share_one_tls_context() -> None:
    # loading the CA bundle takes ~35 ms of CPU; the registry makes a client per health check
    first, second = GuardTransport(Guard([])), GuardTransport(Guard([]), only_host="example.org")
    assert first._pool._ssl_context is not None
    assert first._pool._ssl_context is second._pool._ssl_context
