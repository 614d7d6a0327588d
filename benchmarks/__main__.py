"""`python -m benchmarks` (what `make bench` runs): the whole stack, or BENCH_MODE=trimmed."""

import asyncio
import os
import sys


def main() -> int:
    """Run the mode BENCH_MODE names: `whole` (the default) or `trimmed`."""
    mode = os.environ.get("BENCH_MODE", "whole")
    if mode == "whole":
        from benchmarks import stack

        asyncio.run(stack.main())
    elif mode == "trimmed":
        from benchmarks import trimmed

        asyncio.run(trimmed.main())
    else:
        print(f"BENCH_MODE must be whole or trimmed (got {mode!r})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
