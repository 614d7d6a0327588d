"""Logs are JSON, carry service and ids, and never secrets."""

import io
from collections.abc import Iterator

import orjson
import pytest
import structlog

from libs.common import log


@pytest.fixture(autouse=True)
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test configures logging to its own stream; the tests after it find the defaults."""
    for name in ("info_enabled", "access_enabled", "_levels", "_default_level", "_write"):
        monkeypatch.setattr(log, name, getattr(log, name))  # put back after the test
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_log_lines_are_json_with_service_and_request_id() -> None:
    out = io.StringIO()
    log.configure("demo", "info", stream=out)
    token = log.request_id_var.set("req-1")
    try:
        structlog.get_logger().info("thing_done", count=2)
    finally:
        log.request_id_var.reset(token)
    line = orjson.loads(out.getvalue().strip().splitlines()[-1])
    assert (line["event"], line["service"], line["request_id"], line["count"]) == (
        "thing_done",
        "demo",
        "req-1",
        2,
    )


def test_secret_keys_and_token_shaped_values_are_masked() -> None:
    out = io.StringIO()
    log.configure("demo", "info", stream=out)
    structlog.get_logger().info(
        "login",
        password="hunter2",
        headers={"Authorization": "Bearer x"},
        note="key sbk_abcdefghijklmnop used",
    )
    text = out.getvalue()
    assert "hunter2" not in text
    assert "Bearer x" not in text
    assert "abcdefghijklmnop" not in text
    assert "sbk_***" in text


def lines(out: io.StringIO) -> list[dict[str, object]]:
    """The JSON lines written so far."""
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_the_access_line_carries_the_fields_of_a_structlog_line() -> None:
    out = io.StringIO()
    log.configure("demo", "info", stream=out)
    rid, tid = log.request_id_var.set("req-9"), log.trace_id_var.set("a" * 32)
    try:
        log.access_line("POST", "/mcp", 200, 0.001234)
        log.get_logger("access").info("http_request", method="POST", route="/mcp", status=200)
    finally:
        log.request_id_var.reset(rid)
        log.trace_id_var.reset(tid)
    fast, chain = lines(out)
    assert fast.keys() == chain.keys() | {"duration_ms"}
    assert (fast["event"], fast["logger"], fast["level"], fast["service"]) == (
        "http_request",
        "access",
        "info",
        "demo",
    )
    assert (fast["request_id"], fast["trace_id"], fast["duration_ms"]) == ("req-9", "a" * 32, 1.23)
    assert str(fast["timestamp"]).endswith("Z") and str(chain["timestamp"]).endswith("Z")


def test_a_token_sent_as_request_id_is_masked_in_the_access_line() -> None:
    out = io.StringIO()
    log.configure("demo", "info", stream=out)
    token = log.request_id_var.set("sbk_abcdefghijklmnop")
    try:
        log.access_line("GET", "/api/v1/servers", 200, 0.001)
    finally:
        log.request_id_var.reset(token)
    assert "abcdefghijklmnop" not in out.getvalue()
    assert lines(out)[0]["request_id"] == "sbk_***"


def test_per_logger_levels_quiet_the_access_line_and_open_one_logger_to_debug() -> None:
    out = io.StringIO()
    log.configure(
        "demo", "info", stream=out, levels=log.parse_levels("access=warning,registry.health=debug")
    )
    assert not log.access_enabled and log.info_enabled
    log.get_logger("registry.health").debug("server_checked")
    log.get_logger("other").debug("hidden")
    structlog.get_logger().debug("hidden_too")
    structlog.get_logger().info("shown")
    log.get_logger("access").info("http_request")
    log.get_logger("access").warning("slow_request")
    assert [line["event"] for line in lines(out)] == ["server_checked", "shown", "slow_request"]


def test_level_lists_name_the_part_they_cannot_read() -> None:
    assert log.parse_levels(" access = warning ,, registry.health=DEBUG") == {
        "access": 30,
        "registry.health": 10,
    }
    for bad in ("access", "=info", "access=loud"):
        with pytest.raises(ValueError, match="access|=info|loud"):
            log.parse_levels(bad)
