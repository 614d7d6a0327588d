"""The circuit breaker's states."""

from services.gateway.upstreams.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


def test_the_circuit_opens_after_n_consecutive_failures() -> None:
    br = CircuitBreaker(failures=3, reset_s=10)
    assert br.failure(0) == CLOSED
    assert br.failure(0) == CLOSED
    assert br.failure(0) == OPEN
    assert not br.allow(1)


def test_after_the_reset_time_one_probe_is_allowed() -> None:
    br = CircuitBreaker(failures=1, reset_s=10)
    br.failure(0)
    assert br.allow(11)
    assert br.state == HALF_OPEN
    assert not br.allow(11)


def test_a_failed_probe_opens_again_and_a_good_one_closes() -> None:
    br = CircuitBreaker(failures=1, reset_s=10)
    br.failure(0)
    br.allow(11)
    assert br.failure(11) == OPEN
    assert br.allow(22)
    assert br.success() == CLOSED
    assert br.allow(22)


def test_a_success_resets_the_failure_count() -> None:
    br = CircuitBreaker(failures=2, reset_s=10)
    br.failure(0)
    br.success()
    assert br.failure(0) == CLOSED
