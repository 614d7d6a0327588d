"""NATS: one connection per service, the EVENTS stream, acked publishing, RPC and consumers.

Over 300 lines on purpose: it is the one Bus class, whose publishing, RPC, core-NATS and
consumer methods share its connection, namespace, reconnect hooks and subscriptions; splitting the
class would spread one object's state over modules. Idempotent handlers are in idempotence.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import nats
import orjson
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from libs.common import subjects as subject_names
from libs.common import tracing, wire
from libs.common.bus_access import inbox_prefix
from libs.common.errors import ApiError, Unavailable, UpstreamError, UpstreamTimeout
from libs.common.events import Event, PayloadError
from libs.common.log import request_id_var, trace_id_var
from libs.common.runtime_metrics import PUBLISH_ERRORS
from libs.common.settings import Settings

if TYPE_CHECKING:
    from libs.common.rpc_types import Rpc

log = structlog.get_logger()
Q = TypeVar("Q")
R = TypeVar("R")

STREAM = "EVENTS"
# failures that mean "try again later", not a bug in the handler
DEPENDENCY_AWAY = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
)
STREAM_MAX_AGE_S = 7 * 24 * 3600
Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[None]]
RpcHandler = Callable[[dict[str, Any]], Awaitable[Any]]
MsgHandler = Callable[[Msg], Awaitable[None]]


class RpcError(ApiError):
    """An RPC answered with an error; keeps the remote code and status."""

    def __init__(self, code: str, message: str, status: int, details: dict | None = None) -> None:
        super().__init__(message, details=details)
        self.code = code
        self.status = status


class StreamRefused(RuntimeError):
    """JetStream refused to create a stream the services need; the message says what to change."""

    def __init__(self, stream: str, replicas: int, refused: Exception) -> None:
        reason = getattr(refused, "description", None) or str(refused) or type(refused).__name__
        super().__init__(
            f"NATS refused to create the stream {stream} with {replicas} replica(s)"
            f" (NATS_STREAM_REPLICAS): {reason}. A stream needs as many JetStream nodes as"
            " replicas; one nats-server takes NATS_STREAM_REPLICAS=1."
        )
        self.stream = stream


class Bus:
    """A namespaced view of one NATS connection and its JetStream context."""

    def __init__(
        self,
        nc: NatsClient,
        namespace: str,
        source: str,
        *,
        replicas: int = 1,
        max_bytes: int = 0,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.namespace = namespace
        self.source = source
        self.stream = f"{namespace}_{STREAM}" if namespace else STREAM
        self.replicas = replicas  # NATS_STREAM_REPLICAS: of EVENTS and of every KV bucket
        self.max_bytes = max_bytes  # NATS_STREAM_MAX_BYTES of EVENTS; 0: no limit
        self._tasks: list[asyncio.Task] = []
        self._subs: list[Any] = []
        self._pull_subs: list[Any] = []
        self._reconnect_hooks: list[Callable[[], Awaitable[None]]] = []
        self._acks_prefix: str | None = None  # the inbox JetStream acknowledgements come to
        self._acks: dict[str, asyncio.Future[Msg]] = {}
        self._ack_ids = itertools.count(1)
        self._flush_due = False  # a write of nats-py's pending publishes is scheduled
        self._publish_errors = PUBLISH_ERRORS.labels(source)  # bound once: counted on failure only

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Call `hook` each time the connection comes back (after subscriptions are restored)."""
        self._reconnect_hooks.append(hook)

    async def reconnected(self) -> None:
        """Run the reconnect hooks; one failing does not stop the others."""
        for hook in list(self._reconnect_hooks):
            try:
                await hook()
            except Exception:
                log.exception("nats_reconnect_hook_failed")

    def subject(self, name: str) -> str:
        """Prefix a subject with the namespace (tests run in their own)."""
        return f"{self.namespace}.{name}" if self.namespace else name

    def unprefix(self, subject: str) -> str:
        """Drop the namespace prefix from a received subject."""
        prefix = f"{self.namespace}." if self.namespace else ""
        return subject[len(prefix) :] if prefix and subject.startswith(prefix) else subject

    async def ensure_stream(self) -> None:
        """Create the EVENTS stream on `events.>` when it is missing, else bring it to the settings.

        A stream JetStream refuses to create (more replicas than JetStream nodes) is StreamRefused,
        naming the setting; one found with fewer replicas or another byte limit is updated."""
        try:
            info = await self.js.stream_info(self.stream)
        except NotFoundError:
            config = StreamConfig(
                name=self.stream,
                subjects=[self.subject(subject_names.ALL_EVENTS)],
                max_age=STREAM_MAX_AGE_S,
                max_bytes=self.max_bytes or -1,
                duplicate_window=120,
                num_replicas=self.replicas,
            )
            try:
                await self.js.add_stream(config)
            except Exception as exc:
                await self._created_by_another(self.stream, exc)
            return
        await self._update_stream(info.config, max_bytes=self.max_bytes or -1)

    async def key_value(self, name: str, ttl_s: float | None = None) -> Any:
        """The KV bucket `name` (namespaced), created when it is missing.

        It is created with `ttl_s`, one revision per key and NATS_STREAM_REPLICAS copies (an older
        bucket with fewer is raised to it); replicas racing to create it all get the same bucket."""
        bucket = f"{self.namespace}_{name}" if self.namespace else name
        try:
            kv = await self.js.key_value(bucket)
        except Exception:
            try:
                return await self.js.create_key_value(
                    bucket=bucket, ttl=ttl_s, history=1, replicas=self.replicas
                )
            except Exception as exc:
                await self._created_by_another(f"KV_{bucket}", exc)
                return await self.js.key_value(bucket)
        await self._update_stream((await self.js.stream_info(f"KV_{bucket}")).config)
        return kv

    async def _created_by_another(self, stream: str, refused: Exception) -> None:
        """After a failed create: fine when another replica made the stream, else StreamRefused."""
        try:
            await self.js.stream_info(stream)
        except NotFoundError:
            error = StreamRefused(stream, self.replicas, refused)
            log.error("stream_refused", stream=stream, replicas=self.replicas, error=str(error))
            raise error from refused

    async def _update_stream(self, config: StreamConfig, **wanted: Any) -> None:
        """Raise the stream's replicas to the setting (never lower them) and set `wanted` fields.

        JetStream in a cluster moves a stream to more nodes; when it cannot (fewer nodes than
        replicas), the stream keeps serving as it is and the refusal is logged."""
        changes = {k: v for k, v in wanted.items() if getattr(config, k) != v}
        had = config.num_replicas or 1
        if had < self.replicas:
            changes["num_replicas"] = self.replicas
        if not changes:
            return
        try:
            await self.js.update_stream(dataclasses.replace(config, **changes))
        except Exception as exc:
            log.error(
                "stream_not_updated",
                stream=config.name,
                replicas=had,
                wanted=changes,
                setting="NATS_STREAM_REPLICAS",
                error=str(exc) or type(exc).__name__,
            )
            return
        log.info("stream_updated", stream=config.name, replicas=had, changes=changes)

    async def publish(self, event: Event, timeout: float = 5.0) -> None:
        """Publish to JetStream and wait for its acknowledgement (deduplicated by event id).

        What `js.publish` does, leaner, as it is on the gateway's per-call path: the publish is
        written at once (not on nats-py's flusher's next turn), acknowledgements come to one
        inbox subscription, and the ack is read by orjson, not turned into a PubAck."""
        if self._acks_prefix is None:
            self._acks_prefix = self.nc.new_inbox() + "."
            self._subs.append(await self.nc.subscribe(self._acks_prefix + "*", cb=self._on_ack))
        token = str(next(self._ack_ids))
        loop = asyncio.get_running_loop()
        ack: asyncio.Future[Msg] = loop.create_future()
        self._acks[token] = ack
        headers = {"Nats-Msg-Id": event.id, Header.EXPECTED_STREAM.value: self.stream}
        if tracing.enabled:  # the consumers' spans continue the publisher's trace
            tracing.inject(headers)
        expiry: asyncio.TimerHandle | None = None
        try:
            await self.nc.publish(
                self.subject(event.subject),
                event.to_bytes(),
                reply=self._acks_prefix + token,
                headers=headers,
            )
            self._flush_soon()
            # a timer failing the future, not asyncio.timeout: a quarter of its cost per call
            expiry = loop.call_later(timeout, _expire, ack)
            reply = await ack
        except TimeoutError:
            self._publish_errors.inc()
            raise NatsTimeout from None
        except Exception:  # a cancelled publish is not a failed one
            self._publish_errors.inc()
            raise
        finally:
            if expiry is not None:
                expiry.cancel()
            self._acks.pop(token, None)
        if reply.headers and reply.headers.get(Header.STATUS.value) == "503":
            self._publish_errors.inc()
            raise NoStreamResponseError  # no stream takes the subject
        answer = orjson.loads(reply.data)
        if "error" in answer:
            self._publish_errors.inc()
            raise APIError.from_error(answer["error"])

    def _flush_soon(self) -> None:
        """Write the pending publishes now when alone, else at the end of this event-loop pass.

        Calls that end together (concurrent clients) publish in the same pass: one send, and one
        read for NATS, instead of one each; still before nats-py's flusher would. A publish with
        no other awaiting its acknowledgement (one client at a time) is written at once: it
        would wait for nothing but the loop's next turn."""
        if self._flush_due:
            return
        if len(self._acks) <= 1:  # its own
            _flush_now(self.nc)
            return
        self._flush_due = True
        asyncio.get_running_loop().call_soon(self._flush_pending)

    def _flush_pending(self) -> None:
        """Write what the publishes of this pass left pending."""
        self._flush_due = False
        _flush_now(self.nc)

    async def _on_ack(self, msg: Msg) -> None:
        """Hand a JetStream acknowledgement to the publish waiting for it."""
        future = self._acks.get(msg.subject.rpartition(".")[2])
        if future is not None and not future.done():
            future.set_result(msg)

    # ---- request / reply ------------------------------------------------------------------

    async def request(self, name: str, data: dict[str, Any], timeout: float = 5.0) -> Any:
        """Call `rpc.<service>.<verb>`; remote errors come back as RpcError."""
        headers = {"X-Request-Id": request_id_var.get(), "X-Trace-Id": trace_id_var.get()}
        if tracing.enabled:
            tracing.inject(headers)
        try:
            msg = await self.nc.request(
                self.subject(name), orjson.dumps(data), timeout=timeout, headers=headers
            )
        except NoRespondersError:
            raise Unavailable(f"No service answers {name}.", details={"subject": name}) from None
        except NatsTimeout:
            raise UpstreamTimeout(f"{name} did not answer in {timeout}s.") from None
        try:
            reply = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{name} answered with something that is not JSON.") from None
        if reply.get("ok"):
            return reply.get("data")
        err = reply.get("error") or {}
        raise RpcError(
            err.get("code", "INTERNAL"),
            err.get("message", "remote error"),
            int(err.get("status", 500)),
            err.get("details"),
        )

    async def call(self, method: Rpc[Q, R], request: Q, timeout: float = 5.0) -> R:
        """A typed RPC: the request goes out as JSON, the reply comes back decoded.

        `request` goes out as the JSON object it always was; the reply is decoded (UpstreamError
        when it is outside the contract); remote errors are RpcError."""
        data = await self.request(method.subject, method.encode_request(request), timeout)
        return method.decode_reply(data)

    async def answer(
        self,
        method: Rpc[Q, R],
        handler: Callable[[Q], Awaitable[R]],
        queue: str | None = None,
    ) -> None:
        """Serve `method` with a typed handler; a request outside its contract is answered 400."""

        async def on_request(data: dict[str, Any]) -> Any:
            return wire.encode(await handler(method.decode_request(data)))

        await self.serve(method.subject, on_request, queue)

    async def serve(self, name: str, handler: RpcHandler, queue: str | None = None) -> None:
        """Answer `name` with `handler`, shared over replicas by the queue group."""
        span_name, attributes = f"{name} process", _messaging_attributes(name)

        async def on_msg(msg: Msg) -> None:
            rid = (msg.headers or {}).get("X-Request-Id", "")
            tid = (msg.headers or {}).get("X-Trace-Id", "")
            rid_token, tid_token = request_id_var.set(rid), trace_id_var.set(tid)
            try:
                data = orjson.loads(msg.data) if msg.data else {}
                with tracing.server_span(span_name, msg.headers, tracing.SERVER, attributes):
                    answer = await handler(data)
                reply = {"ok": True, "data": answer}
            except ApiError as exc:
                reply = {"ok": False, "error": _error_dict(exc)}
            except orjson.JSONDecodeError:
                reply = {
                    "ok": False,
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "status": 400,
                        "message": "The request is not JSON.",
                    },
                }
            except Exception:
                log.exception("rpc_handler_failed", subject=name)
                reply = {
                    "ok": False,
                    "error": {"code": "INTERNAL", "status": 500, "message": "The handler failed."},
                }
            finally:
                request_id_var.reset(rid_token)
                trace_id_var.reset(tid_token)
            if msg.reply:
                await msg.respond(orjson.dumps(reply, default=str))

        sub = await self.nc.subscribe(self.subject(name), queue=queue or self.source, cb=on_msg)
        self._subs.append(sub)

    # ---- core NATS (live subjects: not stored, lost when nobody listens) -------------------

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up now."""
        return bool(self.nc.is_connected)

    async def send(self, name: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Publish raw bytes on the core subject `name` (namespaced), written at once."""
        if tracing.enabled:
            headers = {**(headers or {})}
            tracing.inject(headers)
        await self.nc.publish(self.subject(name), data, headers=headers)
        _flush_now(self.nc)

    async def listen(
        self, name: str, callback: MsgHandler, queue: str | None = None, *, owned: bool = True
    ) -> Subscription:
        """Subscribe `callback` to the core subject `name` (namespaced; wildcards allowed).

        `owned` subscriptions end with the Bus; end one earlier by its `unsubscribe()`."""
        sub = await self.nc.subscribe(self.subject(name), queue=queue or "", cb=callback)
        if owned:
            self._subs.append(sub)
        return sub

    async def ask(self, name: str, data: bytes, timeout: float) -> Msg:
        """A core request/reply on `name` (namespaced) with raw bytes; NATS errors propagate."""
        return await self.nc.request(self.subject(name), data, timeout=timeout)

    # ---- following and consuming events --------------------------------------------------

    async def follow(self, pattern: str, handler: Handler) -> Subscription:
        """Receive live events on `pattern` (core NATS, every replica gets each one, no replay).

        The subscription ends with the Bus, or earlier by its `unsubscribe()`."""

        async def on_msg(msg: Msg) -> None:
            try:
                await handler(Event.from_bytes(msg.data))
            except PayloadError as exc:  # a payload unlike its type: said once, not a traceback
                log.warning("event_malformed", subject=msg.subject, error=str(exc))
            except Exception:
                log.exception("event_follow_failed", subject=msg.subject)

        sub = await self.nc.subscribe(self.subject(pattern), cb=on_msg)
        self._subs.append(sub)
        return sub

    def consume(
        self,
        durable: str,
        subjects: Sequence[str],
        handler: Handler,
        *,
        batch: int = 64,
        deliver_new: bool = False,
        ack_wait_s: float = 30.0,
    ) -> None:
        """Run a durable pull consumer: ack after `handler` returns, redeliver when it raises."""

        async def settle(msgs: list[Msg]) -> None:
            for msg in msgs:
                await self._handle(msg, handler)

        config = self._consumer_config(durable, subjects, deliver_new, ack_wait_s)
        self._tasks.append(asyncio.create_task(self._pull_loop(durable, config, settle, batch)))

    def consume_batches(
        self,
        durable: str,
        subjects: Sequence[str],
        handler: BatchHandler,
        one: Handler,
        *,
        batch: int = 64,
        deliver_new: bool = False,
        ack_wait_s: float = 30.0,
        linger_s: float = 0.0,
    ) -> None:
        """Run a durable pull consumer handing `handler` each fetch's events at once.

        After a fetch smaller than `batch`, the next waits `linger_s`, so that at low rates
        events gather into batches instead of going one by one (each event waits at most that).

        `handler` must apply a batch all or nothing (one transaction): its messages are acked
        after it returns. When it raises, the batch is handled again event by event with `one`,
        so an event no handler takes is terminated or redelivered alone; with a dependency away
        (DEPENDENCY_AWAY) the whole batch is redelivered after a second."""

        async def settle(msgs: list[Msg]) -> None:
            await self._handle_batch(msgs, handler, one)

        config = self._consumer_config(durable, subjects, deliver_new, ack_wait_s)
        loop = self._pull_loop(durable, config, settle, batch, linger_s)
        self._tasks.append(asyncio.create_task(loop))

    def _consumer_config(
        self, durable: str, subjects: Sequence[str], deliver_new: bool, ack_wait_s: float
    ) -> ConsumerConfig:
        """The durable pull consumer's configuration: explicit acks, redelivered forever."""
        config = ConsumerConfig(
            # named as well: the create request then carries its filter in its subject, where
            # the service's NATS permissions pin it (libs/common/bus_access.py)
            name=durable,
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_s,
            max_deliver=-1,
            deliver_policy=DeliverPolicy.NEW if deliver_new else DeliverPolicy.ALL,
        )
        # nats-server before 2.10 knows only one filter subject (Debian 12 ships 2.9)
        filters = [self.subject(s) for s in subjects]
        if len(filters) == 1:
            config.filter_subject = filters[0]
        else:
            config.filter_subjects = filters
        return config

    async def _pull_loop(
        self,
        durable: str,
        config: ConsumerConfig,
        settle: Callable[[list[Msg]], Awaitable[None]],
        batch: int,
        linger_s: float = 0.0,
    ) -> None:
        """Fetch, handle, ack; back off and retry on every failure."""
        sub = None
        while True:
            try:
                if sub is None:
                    await self.ensure_stream()
                    await self._ensure_consumer(config)
                    sub = await self.js.pull_subscribe_bind(durable, stream=self.stream)
                    self._pull_subs.append(sub)
                try:
                    msgs = await sub.fetch(batch, timeout=1)
                except (NatsTimeout, TimeoutError):  # nothing to fetch right now
                    continue
                await settle(msgs)
                if linger_s and len(msgs) < batch:
                    await asyncio.sleep(linger_s)  # let the next batch gather
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_retrying", durable=durable, error=repr(exc))
                sub = None if not self.nc.is_connected else sub
                await asyncio.sleep(1)

    async def _ensure_consumer(self, config: ConsumerConfig) -> None:
        """Create the durable, or bind to it; one left by an older filter is recreated."""
        durable = config.durable_name or ""
        try:
            info = await self.js.consumer_info(self.stream, durable)
        except NotFoundError:
            try:
                await self.js.add_consumer(self.stream, config)
            except Exception:  # another replica created it at the same moment
                await self.js.consumer_info(self.stream, durable)
            return
        wanted = sorted(config.filter_subjects or [config.filter_subject or ""])
        have = sorted(info.config.filter_subjects or [info.config.filter_subject or ""])
        if wanted != have:
            # its position is lost; handlers are idempotent, so redelivery doubles nothing
            log.warning("consumer_recreated", durable=durable, had=have, wants=wanted)
            await self.js.delete_consumer(self.stream, durable)
            await self.js.add_consumer(self.stream, config)

    async def _handle(self, msg: Msg, handler: Handler) -> None:
        """Handle one message: bad envelopes are terminated, failures redelivered.

        Traced, it is handled in a CONSUMER span continuing the publisher's trace."""
        if not tracing.enabled:
            await self._handle_event(msg, handler)
            return
        subject = self.unprefix(msg.subject)
        attributes = _messaging_attributes(subject)
        with tracing.server_span(f"{subject} process", msg.headers, tracing.CONSUMER, attributes):
            await self._handle_event(msg, handler)

    async def _handle_event(self, msg: Msg, handler: Handler) -> None:
        """Decode, handle and settle one message."""
        try:
            event = Event.from_bytes(msg.data)
        except ValueError:
            log.warning("event_malformed", subject=msg.subject)
            await msg.term()
            return
        await self._apply(msg, event, handler)

    async def _apply(self, msg: Msg, event: Event, handler: Handler) -> None:
        """Handle one decoded event and settle its message."""
        try:
            await handler(event)
        except PayloadError as exc:  # redelivering it would fail the same way
            log.warning("event_malformed", subject=msg.subject, event_id=event.id, error=str(exc))
            await msg.term()
            return
        except DEPENDENCY_AWAY as exc:
            # Postgres (or another dependency) is away: one line, not a traceback per event
            log.warning("event_handler_retrying", event_type=event.type, error=repr(exc))
            await msg.nak(delay=1)
            return
        except Exception:
            log.exception("event_handler_failed", event_type=event.type, event_id=event.id)
            await msg.nak(delay=1)
            return
        await msg.ack()

    async def _handle_batch(self, msgs: list[Msg], handler: BatchHandler, one: Handler) -> None:
        """Handle one fetch: the batch at once, else (it raised) event by event.

        Acks are sent without waiting for JetStream, as `msg.ack()` always does: one buffered
        write per message, no round trip. Traced, each message gets its CONSUMER span continuing
        its publisher's trace, covering the batch (and its own handling if the batch fell back)."""
        msgs, events = await self._decoded(msgs)
        if not events:
            return
        spans = self._batch_spans(msgs) if tracing.enabled else None
        try:
            await handler(events)
        except DEPENDENCY_AWAY as exc:
            log.warning("event_handler_retrying", events=len(events), error=repr(exc))
            for msg in msgs:
                await msg.nak(delay=1)
        except Exception as exc:
            # one event the handler refuses (or a conflict) must not hold back the others
            log.warning("event_batch_failed", events=len(events), error=repr(exc))
            for i, (msg, event) in enumerate(zip(msgs, events, strict=True)):
                with tracing.resumed(spans[i] if spans else None):
                    await self._apply(msg, event, one)
        else:
            for msg in msgs:
                await msg.ack()
        finally:
            for span in spans or ():
                span.end()

    async def _decoded(self, msgs: list[Msg]) -> tuple[list[Msg], list[Event]]:
        """The messages whose envelopes decode, and their events; the others are terminated."""
        kept, events = [], []
        for msg in msgs:
            try:
                events.append(Event.from_bytes(msg.data))
            except ValueError:
                log.warning("event_malformed", subject=msg.subject)
                await msg.term()
                continue
            kept.append(msg)
        return kept, events

    def _batch_spans(self, msgs: list[Msg]) -> list[Any]:
        """A started CONSUMER span per message, each the child of its publisher's span."""
        spans = []
        for msg in msgs:
            subject = self.unprefix(msg.subject)
            name, attributes = f"{subject} process", _messaging_attributes(subject)
            spans.append(tracing.started_span(name, msg.headers, tracing.CONSUMER, attributes))
        return spans

    async def close(self) -> None:
        """Stop consumers, flush and drain the connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # a pull subscription left open makes drain wait its whole timeout
        for sub in self._pull_subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        with contextlib.suppress(Exception):
            await self.nc.drain()


def _messaging_attributes(subject: str) -> dict[str, str]:
    """Messaging semantic-convention attributes of processing a message from `subject`."""
    return {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": "process",
    }


def _error_dict(exc: ApiError) -> dict[str, Any]:
    """An ApiError as an RPC error reply."""
    return {"code": exc.code, "status": exc.status, "message": exc.message, "details": exc.details}


@asynccontextmanager
async def connect(settings: Settings, name: str | None = None) -> AsyncIterator[Bus]:
    """One reconnecting NATS connection for the service; the EVENTS stream ensured."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=str(exc))

    async def on_disconnect() -> None:
        log.warning("nats_disconnected")

    buses: list[Bus] = []  # the Bus does not exist yet when the callbacks are registered

    async def on_reconnect() -> None:
        log.info("nats_reconnected")
        for each in buses:
            await each.reconnected()

    nc = await nats.connect(
        settings.nats_url,
        name=name or f"switchboard-{settings.service}",
        max_reconnect_attempts=-1,
        drain_timeout=5,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        # the service's own user (libs/common/bus_access.py); none on an unauthenticated server
        user=settings.nats_user or None,
        password=settings.nats_password or None,
        inbox_prefix=inbox_prefix(settings.service, settings.namespace),
    )
    bus = Bus(
        nc,
        settings.namespace,
        settings.service,
        replicas=settings.nats_stream_replicas,
        max_bytes=settings.nats_stream_max_bytes,
    )
    buses.append(bus)
    try:
        await bus.ensure_stream()
        yield bus
    finally:
        await bus.close()


def _expire(ack: asyncio.Future[Msg]) -> None:
    """Fail a publish still waiting for its acknowledgement."""
    if not ack.done():
        ack.set_exception(TimeoutError())


def _flush_now(nc: NatsClient) -> None:
    """Write nats-py's pending commands now rather than on its flusher task's next turn.

    The flusher would send them one event-loop pass later; nats-py itself does this when its
    flusher is gone. Only what the flusher would send, in the same order; on another nats-py
    layout it leaves them to it."""
    pending = getattr(nc, "_pending", None)
    transport = getattr(nc, "_transport", None)
    if not pending or transport is None or not nc.is_connected:
        return
    try:
        transport.writelines(pending)
    except (OSError, RuntimeError):
        return  # the flusher will meet the same error and reconnect
    nc._pending = []  # type: ignore[attr-defined]
    nc._pending_data_size = 0  # type: ignore[attr-defined]
