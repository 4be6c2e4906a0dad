"""Both worker pools: one shape, one idle timeout, one status read (core/workers.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from asyncbridge_ext import run_coroutine_in_new_loop, run_in_thread
from asyncbridge_ext.core._call import Call
from asyncbridge_ext.core._pools import Job, WorkerPool, fresh_loop_pool, thread_pool
from asyncbridge_ext.core.workers import IDLE_SECONDS, worker_status
from support.thread_pool_check import WAIT

NONE = {"busy": 0, "idle": 0, "abandoned": 0}

#: Joins that prove an idle exit came from the short timeout, not the 10 s default.
SHORT_WAIT = IDLE_SECONDS / 2


def join_within(seconds: float, *threads: threading.Thread) -> None:
    """Join ``threads`` by one deadline, ``seconds`` from now (not ``seconds`` each)."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture
def short_idle(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Both real pools emptied of idle workers, then given an idle timeout of 0.05 s."""
    for pool in (fresh_loop_pool(), thread_pool()):
        assert pool.idle_seconds == IDLE_SECONDS  # the one constant of both
        for thread in pool.retire_idle():
            thread.join(WAIT)
            assert not thread.is_alive()
        monkeypatch.setattr(pool, "idle_seconds", 0.05)
    yield
    for pool in (fresh_loop_pool(), thread_pool()):
        for thread in pool.retire_idle():
            thread.join(WAIT)


@pytest.mark.usefixtures("short_idle")
def test_both_pools_report_through_one_status_and_idle_workers_exit_after_the_timeout() -> None:
    assert worker_status() == {"run_coroutine_in_new_loop": NONE, "run_in_thread": NONE}
    seen: list[dict[str, dict[str, int]]] = []

    def on_a_thread_worker() -> threading.Thread:
        seen.append(worker_status())
        return threading.current_thread()

    async def on_a_fresh_loop_worker() -> tuple[threading.Thread, threading.Thread]:
        return threading.current_thread(), run_in_thread(on_a_thread_worker, timeout=WAIT)

    fresh, first = run_coroutine_in_new_loop(on_a_fresh_loop_worker(), timeout=WAIT)
    busy = {"busy": 1, "idle": 0, "abandoned": 0}
    assert seen == [{"run_coroutine_in_new_loop": busy, "run_in_thread": busy}]
    assert fresh.name.startswith("asyncbridge-worker-")
    assert first.name.startswith("asyncbridge-thread-")
    # An extra run_in_thread worker: started by a call made while the first one is busy.
    extra = run_in_thread(lambda: run_in_thread(threading.current_thread, timeout=WAIT))
    assert extra is not first
    join_within(SHORT_WAIT, fresh, extra)
    assert not fresh.is_alive() and not extra.is_alive()
    assert first.is_alive()  # run_in_thread keeps its first worker (thread-local state)
    assert worker_status() == {
        "run_coroutine_in_new_loop": NONE,
        "run_in_thread": {"busy": 0, "idle": 1, "abandoned": 0},
    }


@pytest.mark.usefixtures("short_idle")
def test_an_abandoned_fresh_loop_worker_is_reported_and_exits_when_its_coroutine_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    started: list[threading.Thread] = []

    async def ignores_cancellation() -> None:
        started.append(threading.current_thread())
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass

    try:
        with caplog.at_level(logging.WARNING, logger="asyncbridge_ext"):
            with pytest.raises(TimeoutError, match="did not stop in time"):
                run_coroutine_in_new_loop(ignores_cancellation(), timeout=0.05, cancel_grace=0.1)
        assert "abandoned" in caplog.text
        assert worker_status()["run_coroutine_in_new_loop"] == {
            "busy": 0,
            "idle": 0,
            "abandoned": 1,
        }
        # The next call gets another worker, not the one still running the old loop.
        assert run_coroutine_in_new_loop(_current_thread()) is not started[0]
    finally:
        release.set()
    started[0].join(WAIT)
    assert not started[0].is_alive()  # it exits once its coroutine returns
    assert worker_status()["run_coroutine_in_new_loop"]["abandoned"] == 0


async def _current_thread() -> threading.Thread:
    return threading.current_thread()


class _Wait(Job):
    """A job that waits for ``go``, then records which thread ran it."""

    __slots__ = ("go", "ran_on")

    def __init__(self, go: threading.Event) -> None:
        super().__init__(Call())
        self.go = go
        self.ran_on: threading.Thread | None = None

    def run(self) -> None:
        self.go.wait(WAIT)
        self.ran_on = threading.current_thread()


@pytest.mark.parametrize("keep_first", [False, True])
def test_the_pool_shape_with_a_short_idle_timeout_from_its_constructor(keep_first: bool) -> None:
    """Busy workers never share; idle ones exit after ``idle_seconds`` (but a kept first)."""
    pool = WorkerPool("asyncbridge-test-", keep_first=keep_first, idle_seconds=0.05)
    go = threading.Event()
    jobs = [_Wait(go), _Wait(go)]
    workers = [pool.reserve(), pool.reserve()]  # the first is busy: a second one is made
    for worker, job in zip(workers, jobs, strict=True):
        pool.submit(worker, job)
    assert pool.status() == {"busy": 2, "idle": 0, "abandoned": 0}
    go.set()
    for worker, job in zip(workers, jobs, strict=True):
        assert job.call.done.acquire(timeout=WAIT)
        pool.after_call(worker, job)
        assert job.ran_on is worker.thread
    first, second = (worker.thread for worker in workers)
    assert (first.name, second.name) == ("asyncbridge-test-1", "asyncbridge-test-2")
    join_within(SHORT_WAIT, second, *([] if keep_first else [first]))
    assert not second.is_alive()
    if keep_first:
        assert first.is_alive()
        assert pool.status() == {"busy": 0, "idle": 1, "abandoned": 0}
        for thread in pool.retire_idle():
            thread.join(WAIT)
    assert not first.is_alive()
    assert pool.status() == NONE
