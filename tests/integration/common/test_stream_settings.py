"""NATS_STREAM_REPLICAS and NATS_STREAM_MAX_BYTES reach the streams the services create.

The test server is one node: it refuses to create a stream with more than one replica, which is
how a cluster with fewer nodes than NATS_STREAM_REPLICAS looks too, so the refusal must be a
startup error naming the setting, not a crash loop without a message."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from structlog.testing import capture_logs

from libs.common import bus as busmod
from libs.devstack import proc
from libs.devstack.harness import settings_for
from tests.integration.common.demo_app import DemoSettings

MIB = 1024 * 1024


def settings(pg_url: str, nats_url: str, namespace: str, **env: object) -> DemoSettings:
    """Demo settings in a namespace of their own (the session's cleanup deletes its streams)."""
    own = f"{namespace}s{secrets.token_hex(3)}"
    return settings_for(DemoSettings, pg_url=pg_url, nats_url=nats_url, namespace=own, **env)


async def test_the_replicas_and_byte_limit_reach_the_events_stream(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    demo = settings(pg_url, nats_url, namespace, NATS_STREAM_MAX_BYTES=str(8 * MIB))
    async with busmod.connect(demo) as bus:
        config = (await bus.js.stream_info(bus.stream)).config
        assert (config.num_replicas, config.max_bytes) == (1, 8 * MIB)
        kv = await bus.key_value("replicas_probe", ttl_s=60)
        kv_config = (await bus.js.stream_info(f"KV_{demo.namespace}_replicas_probe")).config
        assert kv_config.num_replicas == 1
        await kv.put("k", b"v")


async def test_a_changed_byte_limit_updates_the_existing_stream(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    first = settings(pg_url, nats_url, namespace)
    async with busmod.connect(first) as bus:
        assert (await bus.js.stream_info(bus.stream)).config.max_bytes == -1
    again = settings_for(
        DemoSettings,
        pg_url=pg_url,
        nats_url=nats_url,
        namespace=first.namespace,
        NATS_STREAM_MAX_BYTES=str(4 * MIB),
    )
    async with busmod.connect(again) as bus:
        assert (await bus.js.stream_info(bus.stream)).config.max_bytes == 4 * MIB


async def test_more_replicas_than_nodes_is_a_startup_error_naming_the_setting(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    demo = settings(pg_url, nats_url, namespace, NATS_STREAM_REPLICAS="3")
    with pytest.raises(busmod.StreamRefused, match="NATS_STREAM_REPLICAS") as refused:
        async with busmod.connect(demo):
            pass
    assert refused.value.stream == f"{demo.namespace}_EVENTS"


async def test_a_bucket_with_more_replicas_than_nodes_is_refused_by_name(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    one = settings(pg_url, nats_url, namespace)
    async with busmod.connect(one) as bus:
        bus.replicas = 3  # the stream exists; a bucket created now asks for three copies
        with pytest.raises(busmod.StreamRefused, match="NATS_STREAM_REPLICAS"):
            await bus.key_value("replicas_refused")


async def test_an_existing_stream_is_raised_to_the_replicas_set_and_never_lowered(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    # nats-server records a raised replica count even on one node (a cluster then places the
    # copies); only creating a stream with more replicas than nodes is refused
    one = settings(pg_url, nats_url, namespace)
    async with busmod.connect(one):
        pass

    def again(replicas: int) -> DemoSettings:
        return settings_for(
            DemoSettings,
            pg_url=pg_url,
            nats_url=nats_url,
            namespace=one.namespace,
            NATS_STREAM_REPLICAS=str(replicas),
        )

    with capture_logs() as logs:
        async with busmod.connect(again(3)) as bus:
            assert (await bus.js.stream_info(bus.stream)).config.num_replicas == 3
            await bus.js.publish(bus.subject("events.demo.widget.created"), b"{}")
    raised = [line for line in logs if line["event"] == "stream_updated"]
    assert raised and raised[0]["changes"] == {"num_replicas": 3}
    assert raised[0]["replicas"] == 1
    async with busmod.connect(again(1)) as bus:
        assert (await bus.js.stream_info(bus.stream)).config.num_replicas == 3


def run_audit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m services.audit` with `env` until it exits (60 s at most)."""
    return subprocess.run(
        [sys.executable, "-m", "services.audit"],
        env=env,
        cwd=proc.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_service_started_with_too_many_replicas_exits_saying_why(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": pg_url,
        "NATS_URL": nats_url,
        "SWITCHBOARD_NAMESPACE": f"{namespace}x{secrets.token_hex(3)}",
        "NATS_STREAM_REPLICAS": "3",
        "AUDIT_PORT": "0",
        "LOG_LEVEL": "info",
    }
    done = run_audit(env)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "stream_refused" in output and "NATS_STREAM_REPLICAS" in output, output[-3000:]


def test_an_out_of_range_replica_count_is_a_configuration_error() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "NATS_STREAM_REPLICAS": "7"}
    done = run_audit(env)
    assert done.returncode == 2
    assert "NATS_STREAM_REPLICAS must be from 1 to 5 (got 7)" in done.stderr
