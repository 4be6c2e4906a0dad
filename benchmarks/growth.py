"""Per-call cost against work elsewhere in the process, and ``run_in_thread`` per call.

``pending_tasks_curve``: µs per call of ``run_coroutine_in_new_loop`` and ``LoopThread.run``
while the caller's loop holds 0, 200, 2,000 or 20,000 pending tasks (unrelated work, as a
notebook with a server or a crawler in the background has). The levels are interleaved
in rounds and each figure is the median over rounds, so a burst of load hits every level.

``thread_calls``: µs per call of ``run_in_thread`` against the floor,
``ThreadPoolExecutor.submit(f).result()`` on a one-thread pool, and against anyio's way to
run a sync function in a worker thread from sync code, ``portal.call(to_thread.run_sync, f)``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from contenders import work

from asyncbridge_ext import LoopThread, run_coroutine_in_new_loop, run_in_thread

PENDING_LEVELS = (0, 200, 2000, 20000)


def _per_call_us(call: Callable[[int], int], calls: int) -> float:
    start = time.perf_counter()
    for x in range(calls):
        if call(x) != x + 1:
            raise AssertionError("wrong result")
    return (time.perf_counter() - start) / calls * 1e6


def pending_tasks_curve(
    rounds: int = 5, calls: int = 200, levels: tuple[int, ...] = PENDING_LEVELS
) -> dict[str, dict[int, list[float]]]:
    """api -> pending tasks -> µs per call of each round, timed from sync code in a loop."""
    runner = LoopThread()
    apis: dict[str, Callable[[int], int]] = {
        "run_coroutine_in_new_loop": lambda x: run_coroutine_in_new_loop(work(x)),
        "LoopThread.run": lambda x: runner.run(work(x)),
    }
    samples: dict[str, dict[int, list[float]]] = {api: {n: [] for n in levels} for api in apis}

    async def cell() -> None:
        release = asyncio.Event()
        pending: list[asyncio.Task[Any]] = []
        try:
            for index in range(rounds):
                order = levels if index % 2 == 0 else levels[::-1]
                for level in order:
                    while len(pending) < level:
                        pending.append(asyncio.ensure_future(release.wait()))
                    while len(pending) > level:
                        pending.pop().cancel()
                    await asyncio.sleep(0)  # the tasks start waiting; cancelled ones end
                    for api, call in apis.items():
                        _per_call_us(call, 20)  # warm up
                        samples[api][level].append(_per_call_us(call, calls))
        finally:
            release.set()
            await asyncio.gather(*pending, return_exceptions=True)

    try:
        asyncio.run(cell())
    finally:
        runner.close()
    return samples


def _one(x: int) -> int:
    return x + 1


def thread_calls(rounds: int = 9, calls: int = 300) -> dict[str, list[float]]:
    """name -> µs per call of each round: run_in_thread, the executor floor, anyio."""
    from anyio import to_thread
    from anyio.from_thread import start_blocking_portal

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-floor")
    manager = start_blocking_portal()
    portal = manager.__enter__()
    contenders: dict[str, Callable[[int], int]] = {
        "run_in_thread": lambda x: run_in_thread(_one, x),
        "executor": lambda x: pool.submit(_one, x).result(),
        "anyio": lambda x: portal.call(to_thread.run_sync, _one, x),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}

    async def cell() -> None:  # from sync code inside a running loop, as in a notebook
        names = list(contenders)
        for call in contenders.values():
            _per_call_us(call, 30)
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_per_call_us(contenders[name], calls))

    try:
        asyncio.run(cell())
    finally:
        manager.__exit__(None, None, None)
        pool.shutdown()
    return samples


def medians(samples: dict[Any, list[float]]) -> dict[Any, float]:
    return {key: statistics.median(values) for key, values in samples.items()}


if __name__ == "__main__":
    for api, by_level in pending_tasks_curve().items():
        print(api, {level: round(v, 1) for level, v in medians(by_level).items()})
    print({name: round(v, 1) for name, v in medians(thread_calls()).items()})
