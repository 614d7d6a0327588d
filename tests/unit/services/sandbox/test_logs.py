"""Log lines: cut from a stream without holding a long line whole, kept within lines and bytes."""

from __future__ import annotations

from services.sandbox.logs import LineSplitter, LogBuffer, SecretMask, cut


def test_a_stream_is_cut_into_lines_across_chunks_and_long_lines_are_cut_short() -> None:
    lines = LineSplitter(limit=8)
    assert lines.feed(b"one\ntw") == ["one"]
    assert lines.feed(b"o\r\n") == ["two"]
    assert lines.feed(b"x" * 5) == []
    assert lines.feed(b"x" * 100_000) == []
    assert lines._pending == bytearray(b"x" * 8)  # never more than the limit held
    assert lines.feed(b"x\nlast") == ["xxxxxxxx [… 99998 bytes cut]"]
    assert lines.close() == ["last"]
    assert lines.close() == []


def test_the_buffer_drops_its_oldest_lines_to_stay_within_bytes_and_lines() -> None:
    buf = LogBuffer(size=100, max_bytes=1000, line_bytes=300)
    for index in range(20):
        buf.append("s", "stderr", f"{index:03d}" + "y" * 500)
    assert buf.bytes <= 1000
    assert [ln["message"][:3] for ln in buf.lines] == ["017", "018", "019"]
    assert all(ln["message"].endswith("bytes cut]") for ln in buf.lines)
    few = LogBuffer(size=2, max_bytes=10_000, line_bytes=100)
    for text in ("a", "b", "c"):
        few.append("s", "stderr", text)
    assert [ln["message"] for ln in few.lines] == ["b", "c"] and few.bytes == 2


def test_cutting_keeps_whole_characters() -> None:
    assert cut("é" * 10, 5) == "éé [… 15 bytes cut]"
    assert cut("short", 5) == "short"


def test_secret_values_are_masked_exactly_longest_first_and_short_values_are_left() -> None:
    mask = SecretMask(["sk-live-abcdef", "sk-live-abc", "eu", "true"])
    assert mask("token sk-live-abcdef and sk-live-abc in eu") == (
        "token [masked] and [masked] in eu"
    )
    assert mask("nothing here") == "nothing here"
    assert SecretMask([])("sk-live-abcdef") == "sk-live-abcdef"


def test_the_start_of_a_secret_cut_off_at_the_end_of_a_long_line_is_masked_too() -> None:
    mask = SecretMask(["sk-live-abcdef"])
    line = cut("x" * 10 + "sk-live-abcdef", 16)
    assert line == "xxxxxxxxxxsk-liv [… 8 bytes cut]"
    assert mask(line) == "xxxxxxxxxx[masked] [… 8 bytes cut]"
