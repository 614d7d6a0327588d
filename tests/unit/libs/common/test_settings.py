"""Settings: read once from the environment, errors name the variable."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from libs.common.settings import Settings, SettingsError, env


@dataclass(frozen=True)
class DemoSettings(Settings):
    service: ClassVar[str] = "demo"
    default_port: ClassVar[int] = 9001
    limit: int = 3
    ratio: float = 0.5
    enabled: bool = False
    hosts: tuple[str, ...] = ()
    master_key: str = env("DEMO_MASTER_KEY", secret=True)


def test_values_come_from_the_named_variables() -> None:
    s = DemoSettings.from_env(
        {
            "DEMO_MASTER_KEY": "k",
            "DEMO_LIMIT": "7",
            "DEMO_ENABLED": "yes",
            "DEMO_HOSTS": "a, b",
            "DEMO_PORT": "9100",
            "DATABASE_URL": "postgresql://x/y",
            "SWITCHBOARD_HEARTBEAT_S": "2.5",
        }
    )
    assert (s.limit, s.enabled, s.hosts, s.port) == (7, True, ("a", "b"), 9100)
    assert s.database_url == "postgresql://x/y"
    assert s.heartbeat_s == 2.5


def test_defaults_apply_when_variables_are_absent() -> None:
    s = DemoSettings.from_env({"DEMO_MASTER_KEY": "k"})
    assert (s.limit, s.ratio, s.port, s.namespace) == (3, 0.5, 9001, "")


def test_a_malformed_integer_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"DEMO_LIMIT must be an integer \(got 'abc'\)"):
        DemoSettings.from_env({"DEMO_MASTER_KEY": "k", "DEMO_LIMIT": "abc"})


def test_a_malformed_boolean_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="DEMO_ENABLED must be a boolean"):
        DemoSettings.from_env({"DEMO_MASTER_KEY": "k", "DEMO_ENABLED": "maybe"})


def test_a_missing_required_variable_is_named() -> None:
    with pytest.raises(SettingsError, match="DEMO_MASTER_KEY is required"):
        DemoSettings.from_env({})


def test_secrets_stay_out_of_the_repr() -> None:
    s = DemoSettings.from_env(
        {"DEMO_MASTER_KEY": "topsecret", "DATABASE_URL": "postgresql://u:pw@h/d"}
    )
    assert "topsecret" not in repr(s)
    assert "pw@" not in repr(s)


def test_settings_are_frozen() -> None:
    s = DemoSettings.from_env({"DEMO_MASTER_KEY": "k"})
    with pytest.raises(AttributeError):
        s.limit = 9  # type: ignore[misc]


def test_a_services_own_database_url_and_nats_user_win_over_the_shared_ones() -> None:
    shared = {"DEMO_MASTER_KEY": "k", "DATABASE_URL": "postgresql://admin@h/db"}
    shared |= {"NATS_USER": "everyone", "NATS_PASSWORD": "p0"}
    s = DemoSettings.from_env(
        shared
        | {
            "DEMO_DATABASE_URL": "postgresql://demo:pw@h/db",
            "DEMO_NATS_USER": "demo",
            "DEMO_NATS_PASSWORD": "p1",
            "OTHER_DATABASE_URL": "postgresql://other@h/db",
        }
    )
    assert (s.database_url, s.nats_user, s.nats_password) == (
        "postgresql://demo:pw@h/db",
        "demo",
        "p1",
    )
    fallback = DemoSettings.from_env(shared)
    assert (fallback.database_url, fallback.nats_user) == ("postgresql://admin@h/db", "everyone")
    assert "p1" not in repr(s) and "pw" not in repr(s)


@pytest.mark.parametrize("replicas", ["0", "6", "-1"])
def test_stream_replicas_outside_one_to_five_are_refused_by_name(replicas: str) -> None:
    with pytest.raises(SettingsError, match=r"NATS_STREAM_REPLICAS must be from 1 to 5"):
        DemoSettings.from_env({"DEMO_MASTER_KEY": "k", "NATS_STREAM_REPLICAS": replicas})


def test_stream_replicas_default_to_one_and_take_up_to_five() -> None:
    assert DemoSettings.from_env({"DEMO_MASTER_KEY": "k"}).nats_stream_replicas == 1
    five = DemoSettings.from_env({"DEMO_MASTER_KEY": "k", "NATS_STREAM_REPLICAS": "5"})
    assert five.nats_stream_replicas == 5


def test_a_negative_stream_byte_limit_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="NATS_STREAM_MAX_BYTES"):
        DemoSettings.from_env({"DEMO_MASTER_KEY": "k", "NATS_STREAM_MAX_BYTES": "-5"})


def test_unreadable_log_levels_are_errors_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="LOG_LEVEL: 'loud'"):
        Settings.from_env({"LOG_LEVEL": "loud"})
    with pytest.raises(SettingsError, match="LOG_LEVELS: 'access' is not name=level"):
        Settings.from_env({"LOG_LEVELS": "access"})
    assert Settings.from_env({"LOG_LEVELS": "access=warning"}).log_levels == "access=warning"
