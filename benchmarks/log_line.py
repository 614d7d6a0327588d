"""CPU per log line: the access line (`log.access_line`) against a line through the structlog chain.

`python -m benchmarks.log_line`: 20,000 lines of each to /dev/null, alternated, median of 5.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import structlog

from libs.common import log

LINES = 20_000
ROUNDS = 5


def per_line_us(write: Callable[[], None]) -> float:
    """CPU microseconds per call of `write`."""
    started = time.process_time()
    for _ in range(LINES):
        write()
    return (time.process_time() - started) / LINES * 1e6


def main() -> None:
    """Configure as a service does, then time both kinds of line."""
    with open("/dev/null", "w") as sink:
        log.configure("gateway", "info", stream=sink)
        log.request_id_var.set("0123456789abcdef0123456789abcdef")
        log.trace_id_var.set("fedcba9876543210fedcba9876543210")
        chain = structlog.get_logger()
        kinds: dict[str, Callable[[], None]] = {
            "access_line": lambda: log.access_line("POST", "/mcp", 200, 0.00123),
            "structlog chain": lambda: chain.info(
                "http_request", method="POST", route="/mcp", status=200, duration_ms=1.23
            ),
        }
        figures: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(ROUNDS):
            for name, write in kinds.items():
                figures[name].append(per_line_us(write))
    for name, runs in figures.items():
        print(f"{name:16s} {statistics.median(runs):6.2f} us/line (CPU, median of {ROUNDS})")


if __name__ == "__main__":
    main()
