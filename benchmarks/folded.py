"""Read py-spy's raw folded stacks: the frames that cost the most, by self and cumulative share.

`python -m benchmarks.folded <stacks.txt> [top]`, on what `BENCH_PROFILE` writes. A frame is
named `function (file)`, with the file relative to site-packages or the tree; its self share
counts the samples where it was the innermost frame, its cumulative share those where it was on
the stack at all (once per sample, however deep the recursion).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*?)(?::\d+)?\)$")
PREFIXES = (re.compile(r".*/site-packages/"), re.compile(r"^" + re.escape(f"{Path.cwd()}/")))


def frame_name(frame: str) -> str:
    """`function (file)` without the line number and the long path prefixes."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for prefix in PREFIXES:
        path = prefix.sub("", path)
    return f"{match['name']} ({path})"


def shares(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    """Samples in all, and per frame the samples it was innermost in and on the stack of."""
    total, own, on_stack = 0, Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            on_stack[frame] += samples
    return total, own, on_stack


def main(argv: list[str]) -> int:
    """Print the top frames of one file by self share, then by cumulative share."""
    if not argv or len(argv) > 2:
        print("usage: python -m benchmarks.folded <stacks.txt> [top]", file=sys.stderr)
        return 2
    top = int(argv[1]) if len(argv) > 1 else 30
    total, own, on_stack = shares(Path(argv[0]).read_text().splitlines())
    print(f"{total} samples")
    for title, counts in (("self", own), ("cumulative", on_stack)):
        print(f"-- {title}")
        for frame, samples in counts.most_common(top):
            print(f"{100 * samples / max(total, 1):6.2f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
