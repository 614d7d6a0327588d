"""JetStream's CPU per call record, on one node (R1) and on a 3-node cluster (R3).

`python -m benchmarks.jetstream` starts private nats-servers (never the machine's), creates a
stream like the platform's EVENTS (file storage, a 120 s duplicate window), and moves
BENCH_JS_MESSAGES gateway.tool.called events through it the way the platform does: publishers
awaiting each acknowledgement with a Nats-Msg-Id (BENCH_JS_PUBLISHERS at once, like concurrent
gateway calls), and a durable pull consumer fetching batches and acknowledging every message
(like the audit consumer). It prints each node's CPU microseconds per message, the leader's
first. BENCH_JSON=path also writes them for benchmarks/sizing.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from benchmarks.processes import cpu_s, self_cpu_s
from libs.common.events import TOOL_CALLED, ToolCalled
from libs.devstack import nats as devstack_nats
from libs.devstack import ports, proc

MESSAGES = int(os.environ.get("BENCH_JS_MESSAGES", "20000"))
PUBLISHERS = int(os.environ.get("BENCH_JS_PUBLISHERS", "64"))
BATCH = 256
SUBJECT = "bench.events.gateway.tool.called"


@dataclass
class Node:
    """One nats-server of the benchmark."""

    name: str
    port: int
    process: Any

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://127.0.0.1:{self.port}"


def record() -> bytes:
    """A tool-call event as the gateway publishes it (arguments kept as keys)."""
    call = ToolCalled(
        server="github",
        tool="search_issues",
        status="ok",
        principal_kind="api_key",
        principal_id="0b1e6d3c-4f5a-4c8e-9d2b-7a1f3e5c9b20",
        principal_name="ci-bot",
        credential_id="5d7c1a2e-8b3f-4e6d-a9c0-1f2e3d4c5b6a",
        org="acme",
        latency_ms=3.2,
        upstream_ms=2.4,
        request_bytes=412,
        response_bytes=2048,
        arguments={"query": "***", "repo": "***"},
        client="claude-code/1.0",
        tool_fingerprint="sha256:" + "ab" * 32,
    )
    return TOOL_CALLED.event(call, source="gateway").to_bytes()


def config(name: str, port: int, store: Path, routes: list[int], cluster_port: int | None) -> str:
    """A nats-server config: JetStream in `store`, in cluster `bench` when it has routes."""
    lines = [
        f"server_name: {name}",
        f"listen: 127.0.0.1:{port}",
        f'jetstream {{ store_dir: "{store}" }}',
    ]
    if cluster_port is not None:
        others = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
        lines.append(
            f"cluster {{ name: bench, listen: 127.0.0.1:{cluster_port}, routes: [{others}] }}"
        )
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def cluster(size: int) -> AsyncIterator[list[Node]]:
    """Start `size` nats-servers (a cluster when more than one); stop and remove them after."""
    binary = devstack_nats.find_binary()
    if binary is None:
        raise RuntimeError("nats-server not found: run `make setup`")
    root = Path(tempfile.mkdtemp(prefix="sbbench-js-"))
    client_ports = [ports.free_port() for _ in range(size)]
    cluster_ports = [ports.free_port() for _ in range(size)] if size > 1 else [None] * size
    nodes = []
    try:
        for i, (port, cport) in enumerate(zip(client_ports, cluster_ports, strict=True)):
            name = f"n{i + 1}"
            routes = [p for p in cluster_ports if p is not None and p != cport]
            path = root / f"{name}.conf"
            path.write_text(config(name, port, root / name, routes, cport))
            log = proc.run_dir() / "logs" / f"bench-js-{size}-{name}.log"
            process = proc.spawn([str(binary), "-c", str(path)], log)
            nodes.append(Node(name, port, process))
        for node in nodes:
            if not ports.wait_listening("127.0.0.1", node.port, timeout=15):
                raise RuntimeError(f"nats-server {node.name} did not start")
        yield nodes
    finally:
        for node in nodes:
            proc.stop_group(node.process)
        shutil.rmtree(root, ignore_errors=True)


async def create_stream(js: Any, replicas: int) -> None:
    """The EVENTS-like stream and a durable pull consumer (retried while the cluster forms)."""
    stream = StreamConfig(
        name="BENCH",
        subjects=["bench.>"],
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=120,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            await js.add_stream(stream)
            await js.add_consumer(
                "BENCH", ConsumerConfig(durable_name="audit-store", ack_policy=AckPolicy.EXPLICIT)
            )
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def leader(js: Any) -> str:
    """The name of the stream's leader."""
    info = await js.stream_info("BENCH")
    return info.cluster.leader if info.cluster and info.cluster.leader else "n1"


async def move(js: Any, payload: bytes, messages: int) -> None:
    """Publish `messages` (each acknowledged) while the consumer fetches and acknowledges them."""
    sent = iter(range(messages))
    run = os.urandom(4).hex()  # ids unique across runs: the duplicate window would drop repeats

    async def publisher() -> None:
        for i in sent:
            msg_id = f"{run}-{i}"
            await js.publish(SUBJECT, payload, headers={"Nats-Msg-Id": msg_id}, timeout=10)

    async def consumer() -> None:
        sub = await js.pull_subscribe_bind("audit-store", "BENCH")
        done = 0
        while done < messages:
            try:
                batch = await sub.fetch(BATCH, timeout=2)
            except TimeoutError:
                continue
            for msg in batch:
                await msg.ack()
            done += len(batch)

    await asyncio.gather(consumer(), *(publisher() for _ in range(PUBLISHERS)))


async def measure(size: int) -> dict[str, Any]:
    """One run on `size` nodes: each node's CPU us per message, the leader's first."""
    async with cluster(size) as nodes:
        client = await nats.connect([n.url for n in nodes])
        try:
            js = client.jetstream()
            await create_stream(js, size)
            await move(js, record(), 500)  # warm: the stream's files, the client's buffers
            first = await leader(js)
            before = {n.name: cpu_s(n.process.pid) for n in nodes}
            own, t0 = self_cpu_s(), time.monotonic()
            await move(js, record(), MESSAGES)
            wall, own = time.monotonic() - t0, self_cpu_s() - own
            used = {n.name: cpu_s(n.process.pid) - before[n.name] for n in nodes}
        finally:
            await client.close()
    names = [first] + [n for n in used if n != first]
    return {
        "nodes": size,
        "replicas": size,
        "messages": MESSAGES,
        "message_bytes": len(record()),
        "msgs_s": MESSAGES / wall,
        "node_us": {n: used[n] * 1e6 / MESSAGES for n in names},
        "client_us": own * 1e6 / MESSAGES,
    }


def show(run: dict[str, Any]) -> None:
    """One line per node: CPU us per message (publish, store, replicate, deliver, ack)."""
    total = sum(run["node_us"].values())
    print(
        f"{run['nodes']} node(s), R{run['replicas']}: all nodes {total:.0f} us/msg"
        f" ({run['message_bytes']} B each, {run['msgs_s']:,.0f} msgs/s: what {PUBLISHERS}"
        f" publishers waiting on acks got here, not the server's ceiling;"
        f" this client {run['client_us']:.0f} us/msg)"
    )
    for i, (name, us) in enumerate(run["node_us"].items()):
        role = "stream leader" if i == 0 else "follower"
        print(f"  {name} ({role}): {us:.0f} us/msg")


async def main() -> None:
    """Measure one node, then three; print and (BENCH_JSON) write the figures."""
    runs = []
    for size in (1, 3):
        runs.append(await measure(size))
        show(runs[-1])
    if path := os.environ.get("BENCH_JSON"):
        Path(path).write_text(json.dumps({"kind": "jetstream", "runs": runs}, indent=1))
        print(f"figures written to {path}")


if __name__ == "__main__":
    asyncio.run(main())
