"""Many calls, many threads: right results, no leaked threads, loops or descriptors."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from asyncbridge_ext import LoopThread, run_coroutine_in_new_loop


async def double(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_counts() -> tuple[int, int]:
    """(other threads, asyncbridge worker threads). Idle workers left by earlier tests may
    exit at any moment (after 10 s idle), so workers are only bounded, not counted exactly."""
    names = [thread.name for thread in threading.enumerate()]
    workers = sum(name.startswith("asyncbridge-worker-") for name in names)
    return len(names) - workers, workers


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("asyncbridge-worker-")]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_two_thousand_calls_leak_no_thread_loop_or_descriptor() -> None:
    run_coroutine_in_new_loop(double(0))  # warm up: the worker thread exists now
    with LoopThread() as runner:
        runner.run(double(0))
        # Earlier tests' garbage (pipes of their subprocesses, say) is collected now, so
        # the warnings and descriptors below are this test's own, whatever ran before.
        gc.collect()
        (others, workers), fds = thread_counts(), open_fds()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for value in range(2000):
                assert run_coroutine_in_new_loop(double(value)) == value * 2
                assert runner.run(double(value)) == value * 2
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
        others_after, workers_after = thread_counts()
        # Threads of earlier tests (kernel clients, say) may still be exiting: a leak
        # shows as more threads, never fewer.
        assert others_after <= others
        assert 1 <= workers_after <= workers  # sequential calls reuse one worker
        assert open_fds() <= fds


@pytest.mark.parametrize("api", ["new_loop", "loop_thread"])
def test_32_threads_times_100_calls_at_once(api: str) -> None:
    runner = LoopThread() if api == "loop_thread" else None
    run = runner.run if runner is not None else run_coroutine_in_new_loop
    start = threading.Barrier(32, timeout=10)
    ran_on: list[threading.Thread] = []  # Thread objects, never reused (unlike idents)

    async def double_and_record(value: int) -> int:
        ran_on.append(threading.current_thread())
        return await double(value)

    def hundred_calls(worker: int) -> list[int]:
        start.wait()
        return [run(double_and_record(worker * 1000 + i), timeout=30) for i in range(100)]

    idle_before = worker_threads()
    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(hundred_calls, range(32), timeout=60))
    finally:
        if runner is not None:
            runner.close()
    for worker, values in enumerate(results):
        assert values == [(worker * 1000 + i) * 2 for i in range(100)]
    threads = set(ran_on)
    assert len(ran_on) == 3200
    if runner is not None:  # one loop on one thread serves every call
        assert [t.name.startswith("asyncbridge-loop-") for t in threads] == [True]
    else:
        # Workers are reused: their number is bounded by the concurrency, not the 3200
        # calls. A caller can submit its next call before the worker of its last one is
        # idle again, so up to two workers per caller, plus idle ones from earlier tests.
        assert all(t.name.startswith("asyncbridge-worker-") for t in threads)
        assert len(threads) <= 2 * 32 + len(idle_before)


DEV_MODE_SCRIPT = """
import asyncio, gc
from asyncbridge_ext import LoopThread, run_coroutine_in_new_loop

async def work(i):
    asyncio.get_running_loop().create_task(asyncio.sleep(10))  # a leftover task
    async def gen():
        yield i
    async for value in gen():
        return value

async def in_a_running_loop():
    return [run_coroutine_in_new_loop(work(i), timeout=5) for i in range(50)]

assert asyncio.run(in_a_running_loop()) == list(range(50))
with LoopThread() as runner:
    assert [runner.run(work(i)) for i in range(50)] == list(range(50))
try:
    run_coroutine_in_new_loop(work(0), timeout=-1)
except ValueError:
    pass
gc.collect()
print("ok")
"""


def test_python_dev_mode_reports_no_resource_or_task_warnings() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", DEV_MODE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    for noise in ("ResourceWarning", "was never awaited", "Task was destroyed", "Traceback"):
        assert noise not in proc.stderr, proc.stderr
