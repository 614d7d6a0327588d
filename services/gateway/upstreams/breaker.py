"""A circuit breaker per upstream: open after N consecutive failures, one half-open probe."""

from __future__ import annotations

import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    """Counts consecutive transport failures; while open, calls fail fast until `reset_s` passes."""

    def __init__(self, failures: int = 5, reset_s: float = 30.0) -> None:
        self.threshold = max(1, failures)
        self.reset_s = reset_s
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    def allow(self, now: float | None = None) -> bool:
        """True when a call may go to the upstream now (at most one probe while half-open)."""
        now = time.monotonic() if now is None else now
        if self.state == CLOSED:
            return True
        if self.state == OPEN and now - self.opened_at >= self.reset_s:
            self.state = HALF_OPEN
            self._probing = False
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> str:
        """Record a success; returns the new state."""
        self.failures = 0
        self.state = CLOSED
        self._probing = False
        return self.state

    def failure(self, now: float | None = None) -> str:
        """Record a failure; returns the new state."""
        now = time.monotonic() if now is None else now
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            self.state = OPEN
            self.opened_at = now
        self._probing = False
        return self.state

    def retry_in(self, now: float | None = None) -> float:
        """Seconds until the next probe is allowed."""
        now = time.monotonic() if now is None else now
        return max(0.0, self.reset_s - (now - self.opened_at)) if self.state == OPEN else 0.0
