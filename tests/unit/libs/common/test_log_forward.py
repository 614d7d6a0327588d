"""WARNING+ lines forwarded to the buffer of the service's live runtime (libs/common/log.py)."""

from __future__ import annotations

import structlog

from libs.common import log


def test_lines_go_to_the_newest_runtime_and_back_to_the_older_when_it_stops() -> None:
    older = log.forward("probe-svc")
    newer = log.forward("probe-svc")
    logger = structlog.get_logger()
    bound = structlog.contextvars.bound_contextvars(service="probe-svc")  # as configure binds it
    bound.__enter__()
    try:
        logger.info("quiet")  # below WARNING: not forwarded
        logger.warning("first", token="sbk_abcdefgh12345678")
        assert [line["event"] for line in newer] == ["first"] and not older
        assert "abcdefgh" not in str(newer[0])  # redacted like the log line itself
        log.stop_forwarding("probe-svc", newer)
        logger.error("second")
        assert [line["event"] for line in older] == ["second"]
        assert older[0]["level"] == "error" and older[0]["source"] == "probe-svc"
        log.stop_forwarding("probe-svc", older)
        logger.warning("third")  # no runtime left: kept nowhere
        assert [line["event"] for line in older] == ["second"]
    finally:
        log.stop_forwarding("probe-svc", older)
        log.stop_forwarding("probe-svc", newer)
        bound.__exit__(None, None, None)
