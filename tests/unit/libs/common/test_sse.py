"""The SSE parser against the WHATWG event stream rules, the way real servers chunk their bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.common.sse import Event, EventTooLarge, Parser, events

PRIMING = b"id: 0_7\nretry: 1000\ndata: \n\n"  # what TypeScript SDK servers send first


def parse(*chunks: bytes) -> tuple[list[Event], Parser]:
    """Feed the chunks one by one; every event and the parser."""
    parser = Parser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def every_split(body: bytes) -> list[list[bytes]]:
    """The body cut into two chunks at every position, and into single bytes."""
    return [[body[:i], body[i:]] for i in range(len(body) + 1)] + [
        [body[i : i + 1] for i in range(len(body))]
    ]


def test_a_priming_event_has_empty_data_and_sets_the_id_and_the_retry() -> None:
    events, parser = parse(PRIMING + b'event: message\ndata: {"id":1}\n\n')
    assert events == [Event(b"", "message", "0_7"), Event(b'{"id":1}', "message", "0_7")]
    assert parser.retry_ms == 1000 and parser.last_id == "0_7"


def test_an_event_without_a_data_line_is_dispatched_to_nobody_but_keeps_its_id() -> None:
    events, parser = parse(b"id: 5\n\nevent: ping\n\n", b"data: x\n\n")
    assert events == [Event(b"x", "message", "5")]
    assert parser.last_id == "5"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_works_and_chunk_boundaries_never_matter(newline: bytes) -> None:
    body = newline.join([b"event: note", b"data: a", b"data:b", b"", b"data: c", b"", b""])
    expected = [Event(b"a\nb", "note", None), Event(b"c", "message", None)]
    for chunks in every_split(body):
        assert parse(*chunks)[0] == expected, chunks


def test_comments_unknown_fields_and_colonless_lines() -> None:
    body = b": keep-alive\nfoo: bar\ndata\ndata:  two spaces\nevent\n\n"
    assert parse(body)[0] == [Event(b"\n two spaces", "message", None)]


def test_an_id_holding_nul_is_ignored_and_a_non_numeric_retry_too() -> None:
    events, parser = parse(b"id: 1\nretry: 200\n\nid: 2\x00\nretry: 3s\ndata: x\n\n")
    assert events == [Event(b"x", "message", "1")]
    assert parser.retry_ms == 200


def test_an_empty_id_resets_the_last_event_id() -> None:
    assert parse(b"id: 9\ndata: a\n\nid\ndata: b\n\n")[0][1].id == ""


def test_a_byte_order_mark_is_dropped_only_at_the_start() -> None:
    bom = b"\xef\xbb\xbf"
    for chunks in every_split(bom + b"data: a\n\n" + bom + b"data: b\n\n"):
        events = parse(*chunks)[0]
        assert [e.data for e in events] == [b"a"], chunks  # a later BOM starts an unknown field


def test_an_event_cut_off_by_the_end_of_the_stream_is_not_dispatched() -> None:
    assert parse(b"data: whole\n\ndata: cut")[0] == [Event(b"whole")]


def test_an_event_type_applies_to_its_own_event_only() -> None:
    events = parse(b"event: endpoint\ndata: /messages?s=1\n\ndata: {}\n\n")[0]
    assert [e.event for e in events] == ["endpoint", "message"]


def test_an_event_past_the_limit_is_refused_as_it_grows_not_when_it_ends() -> None:
    parser = Parser(max_event_bytes=64)
    assert parser.feed(b"data: " + b"a" * 40 + b"\n\n") == [Event(b"a" * 40)]
    with pytest.raises(EventTooLarge):
        parser.feed(b"data: " + b"b" * 70)  # one line, never ended
    many = Parser(max_event_bytes=64)
    with pytest.raises(EventTooLarge):
        for _ in range(10):
            many.feed(b"data: " + b"c" * 20 + b"\n")  # many lines of one event


def test_events_under_the_limit_pass_however_many_there_are() -> None:
    parser = Parser(max_event_bytes=64)
    events = parser.feed(b"data: x\n\n" * 1000)
    assert len(events) == 1000


# what a TypeScript-SDK server's Streamable HTTP response looks like on the wire, CRLF included
TS_STREAM = (
    b"id: 0_1\r\nretry: 1000\r\ndata: \r\n\r\n"
    b": keep-alive\r\n\r\n"
    b"event: message\r\nid: 0_2\r\n"
    b'data: {"jsonrpc":"2.0","method":"notifications/progress"}\r\n\r\n'
    b"event: message\r\nid: 0_3\r\n"
    b'data: {"jsonrpc":"2.0","id":1,\r\ndata: "result":{"t":"\xc3\xa9"}}\r\n\r\n'
)


def test_a_typescript_sdk_stream_parses_the_same_however_it_is_chunked() -> None:
    expected = [
        Event(b"", "message", "0_1"),
        Event(b'{"jsonrpc":"2.0","method":"notifications/progress"}', "message", "0_2"),
        Event(b'{"jsonrpc":"2.0","id":1,\n"result":{"t":"\xc3\xa9"}}', "message", "0_3"),
    ]
    for chunks in every_split(TS_STREAM):
        events, parser = parse(*chunks)
        assert events == expected, chunks
        assert (parser.last_id, parser.retry_ms) == ("0_3", 1000)


async def test_the_async_reader_yields_events_as_their_chunks_arrive() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(TS_STREAM), 7):
            yield TS_STREAM[i : i + 7]

    parser = Parser()
    got = [event async for event in events(chunks(), parser)]
    assert [e.id for e in got] == ["0_1", "0_2", "0_3"] and parser.retry_ms == 1000


def test_a_value_keeps_its_later_colons_and_spaces() -> None:
    assert parse(b"data: a: b :c \n\n")[0] == [Event(b"a: b :c ")]
