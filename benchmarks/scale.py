"""Many caller threads at once through each API: right results, no deadlock, bounded threads.

For each thread count, every caller thread makes ``calls`` calls (all threads start
together at a barrier); throughput is total calls / wall time. Every call has a timeout
and every wait on the caller threads is bounded, so a deadlock shows up as an error
rather than a hang.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asyncbridge_ext import LoopThread, run_coroutine_in_new_loop

THREAD_COUNTS = (1, 2, 4, 8, 16, 32, 64)


async def tagged(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


def _workers() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("asyncbridge-worker-"))


def _loop_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("asyncbridge-loop-"))


def run_scale(api: str, threads: int, calls: int, runner: LoopThread | None) -> dict[str, Any]:
    """One scenario: ``threads`` callers x ``calls`` calls through ``api``."""
    run = runner.run if runner is not None else run_coroutine_in_new_loop
    barrier = threading.Barrier(threads + 1, timeout=60)

    def caller(index: int) -> bool:
        barrier.wait()
        base = index * 1_000_000
        return all(run(tagged(base + i), timeout=60) == (base + i) * 2 for i in range(calls))

    with ThreadPoolExecutor(threads, thread_name_prefix="bench-caller") as pool:
        futures = [pool.submit(caller, index) for index in range(threads)]
        barrier.wait()
        start = time.perf_counter()
        correct = all(future.result(timeout=300) for future in futures)
        elapsed = time.perf_counter() - start
    return {
        "api": api,
        "threads": threads,
        "calls": threads * calls,
        "seconds": elapsed,
        "calls_per_s": threads * calls / elapsed,
        "correct": correct,
        # Idle workers linger a few seconds, so this is the peak the scenario needed.
        "worker_threads": _workers(),
        "loop_threads": _loop_threads(),
    }


def _best_of(api: str, threads: int, calls: int, runner: LoopThread | None, repeats: int) -> Any:
    """Median throughput of ``repeats`` runs (single runs swing 2x on a shared machine)."""
    runs = [run_scale(api, threads, calls, runner) for _ in range(repeats)]
    runs.sort(key=lambda row: row["calls_per_s"])
    row = dict(runs[len(runs) // 2])
    row["correct"] = all(run["correct"] for run in runs)
    row["worker_threads"] = max(run["worker_threads"] for run in runs)
    return row


def run_all(
    calls: int = 200, counts: tuple[int, ...] = THREAD_COUNTS, repeats: int = 3
) -> list[dict[str, Any]]:
    rows = []
    for threads in counts:
        rows.append(_best_of("run_coroutine_in_new_loop", threads, calls, None, repeats))
    with LoopThread() as runner:
        for threads in counts:
            rows.append(_best_of("LoopThread.run", threads, calls, runner, repeats))
    return rows


if __name__ == "__main__":
    for row in run_all():
        print(row)
