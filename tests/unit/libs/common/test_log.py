"""Logs are JSON, carry service and ids, and never secrets."""

import io

import orjson
import structlog

from libs.common import log


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
