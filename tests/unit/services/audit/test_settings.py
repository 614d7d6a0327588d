"""The audit service's own settings: the batch linger's range."""

from __future__ import annotations

import pytest

from libs.common.settings import SettingsError
from services.audit.settings import AuditSettings


def test_the_batch_linger_defaults_to_20_ms() -> None:
    assert AuditSettings.from_env({}).batch_linger_ms == 20.0
    assert AuditSettings.from_env({"AUDIT_BATCH_LINGER_MS": "0"}).batch_linger_ms == 0.0


@pytest.mark.parametrize("value", ["-1", "1001"])
def test_a_batch_linger_outside_0_to_1000_ms_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="AUDIT_BATCH_LINGER_MS must be from 0 to 1000"):
        AuditSettings.from_env({"AUDIT_BATCH_LINGER_MS": value})
