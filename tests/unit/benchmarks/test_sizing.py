"""The sizing model: per-call figures from bench files, cores at each rate, what saturates."""

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import sizing
from benchmarks.sizing import PerCall


def path(cpu_us: dict[str, float], calls: int = 1000, stored: int | None = None) -> dict:
    """One path of one bench run."""
    return {"cpu_us": cpu_us, "calls": calls, "stored": stored, "calls_s": 100.0}


def bench(gateway: float, audit: float, nats: float, storage: dict | None = None) -> dict:
    """A bench document: both generations at c=1 and c=32; c=1 is costlier and must be ignored."""
    runs: list[dict[str, Any]] = []
    for revision, extra in (("2026-07-28", 0.0), ("2025-11-25", 100.0)):
        for conc, scale in ((1, 3.0), (32, 1.0)):
            cpu = {
                "gateway": (gateway + extra) * scale,
                "audit": audit * scale,
                "nats": nats * scale,
                "postgres": 200.0,
                "upstream": 500.0,
            }
            runs.append(
                {
                    "revision": revision,
                    "conc": conc,
                    "nginx": path(cpu, stored=500),  # half the calls stored: audit x2 per record
                    "direct": path({"upstream": 500.0}),
                }
            )
    return {"runs": runs, "storage": storage or {}}


def test_a_figure_is_the_worse_generation_at_the_top_concurrency_and_audit_per_stored_call() -> (
    None
):
    figures = sizing.worst_nginx_run(bench(gateway=400, audit=150, nats=100))
    assert figures["gateway"] == 500  # the session generation's, at c=32
    assert figures["audit"] == 300  # 150 us per call, one record per two calls
    assert figures["nats"] == 100


def test_the_model_takes_the_median_of_the_files() -> None:
    documents = [
        bench(gateway=g, audit=100, nats=50, storage={"record_bytes": b})
        for g, b in ((300, 900.0), (900, 1100.0), (400, 1000.0))
    ]
    model = sizing.per_call(documents)
    assert model.cpu_us["gateway"] == 500  # median of 400, 1000, 500
    assert model.storage["record_bytes"] == 1000.0
    assert model.files == 3


def test_cores_are_planned_at_the_target_utilisation() -> None:
    # 500 us per call at 1,000 calls/s is half a core busy, planned at 60%
    assert sizing.cores(500, 1000) == pytest.approx(0.5 / sizing.TARGET_UTILISATION)


def test_the_nats_stream_saturates_before_the_postgres_primary_when_it_costs_more_per_core() -> (
    None
):
    model = PerCall({"nats": 100.0, "postgres": 200.0, "upstream": 50.0}, {}, 1)
    limits = sizing.ceilings(model)
    stream = limits["one JetStream stream (its leader)"]
    assert stream == pytest.approx(sizing.TARGET_UTILISATION * 1e6 / 100)  # 6,000 calls/s
    assert sizing.saturated_first(model, 1_000) == []
    assert sizing.saturated_first(model, 10_000) == ["one JetStream stream (its leader)"]
    first = sizing.saturated_first(model, 100_000)
    assert first[0] == "one JetStream stream (its leader)" and len(first) == 3


def test_the_report_has_a_row_per_process_and_replicas_for_the_python_services(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = {"record_bytes": 1000.0, "processed_event_bytes": 100.0, "record_heap_bytes": 600.0}
    document = bench(gateway=400, audit=150, nats=100, storage=storage)
    (tmp_path / "run.json").write_text(json.dumps(document))
    assert sizing.main([str(tmp_path / "run.json")]) == 0
    out = capsys.readouterr().out
    gateway = next(line for line in out.splitlines() if line.startswith("| gateway |"))
    # 500 us per call: 2,000 calls/s per core; at 100k calls/s 50 busy cores, 83.3 planned
    assert gateway.split("|")[2:4] == [" 500 ", " 2,000 "]
    assert "83.3 (84)" in gateway
    # no JetStream file: NATS is the whole-stack figure on each of three nodes
    assert "| nats, 3 nodes, R3 (the whole-stack figure x3) | 300 |" in out
    # 1,100 B per call at 1,000 calls/s: 95.0 GB a day
    assert "| 1,000 | 2,000 | 95.0 GB" in out


def jetstream(leader: float, followers: tuple[float, float]) -> dict:
    """A benchmarks/jetstream.py document: one node, then three (the leader's figure first)."""
    cluster = {"n2": leader, "n1": followers[0], "n3": followers[1]}
    return {
        "kind": "jetstream",
        "runs": [
            {"nodes": 1, "replicas": 1, "node_us": {"n1": 40.0}},
            {"nodes": 3, "replicas": 3, "node_us": cluster},
        ],
    }


def test_a_jetstream_file_gives_the_nats_cluster_and_its_leader_the_stream_ceiling() -> None:
    documents = [
        bench(gateway=400, audit=150, nats=900),
        jetstream(50.0, (30.0, 20.0)),
        jetstream(70.0, (50.0, 40.0)),
        jetstream(60.0, (40.0, 30.0)),
    ]
    model = sizing.per_call(documents)
    assert model.files == 1  # the bench files; JetStream's are apart
    assert model.nats_us == (60.0, 40.0, 30.0)  # medians, node by node
    assert sizing.ceilings(model)["one JetStream stream (its leader)"] == pytest.approx(10_000)
    table = "\n".join(sizing.service_table(model))
    assert "| nats, 3 nodes, R3 (benchmarks/jetstream.py) | 130 | 7,692 |" in table
    assert "the whole-stack run's NATS server (shared) showed 900" in sizing.report(model)


def test_no_file_is_a_usage_error() -> None:
    assert sizing.main([]) == 2
