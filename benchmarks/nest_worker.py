"""Subprocess contender: nested ``asyncio.run`` under nest_asyncio2.

nest_asyncio2 patches asyncio for the whole process (pure-Python Task and Future), so
it gets a process of its own and the other contenders stay unpatched. The parent sends
one line per batch (the number of calls); this process runs that many nested
``asyncio.run(work(x))`` calls from sync code inside its running loop and answers with
the elapsed seconds, so its batches interleave with the parent's rounds.
"""

from __future__ import annotations

import asyncio
import sys
import time

import nest_asyncio2
from contenders import work


def run_batches() -> None:
    """Sync code inside a running loop: answer batch requests until stdin closes."""
    for line in sys.stdin:
        count = int(line)
        start = time.perf_counter()
        for x in range(count):
            if asyncio.run(work(x)) != x + 1:
                raise AssertionError("nested asyncio.run returned a wrong result")
        elapsed = time.perf_counter() - start
        print(f"{elapsed!r}", flush=True)


async def main() -> None:
    nest_asyncio2.apply()
    run_batches()


if __name__ == "__main__":
    asyncio.run(main())
