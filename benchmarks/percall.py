"""Per-call cost of each contender, measured from sync code inside a running loop.

Rounds are interleaved: in each round every contender runs one timed batch, in an
order rotated from round to round, so a burst of load on this shared machine hits all
contenders alike. The figure per contender is the median over rounds of µs per call.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from contenders import CONTENDERS, Call

HERE = Path(__file__).resolve().parent

Batch = Callable[[int], float]  # run n calls, return elapsed seconds


def _local_batch(call: Call) -> Batch:
    def batch(count: int) -> float:
        start = time.perf_counter()
        for x in range(count):
            if call(x) != x + 1:
                raise AssertionError("contender returned a wrong result")
        return time.perf_counter() - start

    return batch


class NestProcess:
    """The nest_asyncio2 contender, driven batch by batch in its own process."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "nest_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )

    def batch(self, count: int) -> float:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{count}\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the nest_asyncio2 worker process died")
        return float(line)

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


def measure_in_running_loop(
    names: list[str], rounds: int, calls: int, warmup: int = 50, nest: bool = True
) -> dict[str, list[float]]:
    """Return name -> µs per call of each round. Runs the rounds inside ``asyncio.run``."""

    async def notebook_cell() -> dict[str, list[float]]:
        # A cell: sync code (the contenders block) while this loop is running.
        return _measure_sync(names, rounds, calls, warmup, nest)

    return asyncio.run(notebook_cell())


def _measure_sync(
    names: list[str], rounds: int, calls: int, warmup: int, nest: bool
) -> dict[str, list[float]]:
    batches: dict[str, Batch] = {}
    closers: list[Callable[[], None]] = []
    try:
        for name in names:
            call, close = CONTENDERS[name][1]()
            closers.append(close)
            batches[name] = _local_batch(call)
        if nest:
            proc = NestProcess()
            closers.append(proc.close)
            batches["nest_asyncio2"] = proc.batch
        for batch in batches.values():
            batch(warmup)
        order = list(batches)
        samples: dict[str, list[float]] = {name: [] for name in order}
        for index in range(rounds):
            shift = index % len(order)
            for name in order[shift:] + order[:shift]:
                samples[name].append(batches[name](calls) / calls * 1e6)
        return samples
    finally:
        for close in closers:
            close()


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    result = medians(measure_in_running_loop(list(CONTENDERS), rounds=7, calls=300))
    for name, value in result.items():
        print(f"{name:15s} {value:8.1f} µs")
