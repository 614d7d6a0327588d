"""The gateway's per-method metric cache stays bounded whatever method names callers send."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.gateway import metrics


def test_junk_method_names_share_one_cache_entry_and_label() -> None:
    for i in range(500):
        metrics.operation(f"junk/{i}", "error").observe(0.001)
    junk_keys = [key for key in metrics._OPERATIONS if key[0] not in metrics._METHODS]
    assert junk_keys == [("other", "error")]
    assert not any(key[0].startswith("junk/") for key in metrics._OPERATIONS)
    count = REGISTRY.get_sample_value(
        "mcp_server_operation_duration_seconds_count",
        {"mcp_method_name": "other", "status": "error"},
    )
    assert count is not None and count >= 500


def test_known_methods_keep_their_own_label() -> None:
    before = (
        REGISTRY.get_sample_value(
            "mcp_server_operation_duration_seconds_count",
            {"mcp_method_name": "tools/list", "status": "ok"},
        )
        or 0
    )
    metrics.operation("tools/list", "ok").observe(0.002)
    after = REGISTRY.get_sample_value(
        "mcp_server_operation_duration_seconds_count",
        {"mcp_method_name": "tools/list", "status": "ok"},
    )
    assert after == before + 1
    assert metrics.operation("tools/list", "ok") is metrics.operation("tools/list", "ok")
