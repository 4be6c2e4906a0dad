"""LoopThread: one persistent loop on one thread, its lifecycle and its refusals."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from asyncbridge_ext import LoopThread

tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="unset")


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    with LoopThread() as loop_thread:
        yield loop_thread


async def where() -> tuple[int, asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return threading.get_ident(), asyncio.get_running_loop()


def test_every_call_runs_on_the_same_thread_and_loop(runner: LoopThread) -> None:
    placements = {runner.run(where()) for _ in range(10)}
    assert len(placements) == 1
    ((ident, loop),) = placements
    assert ident != threading.get_ident()
    assert loop is runner.loop
    assert not loop.is_closed()


def test_thread_is_a_named_daemon_and_close_joins_it() -> None:
    before = set(threading.enumerate())
    runner = LoopThread()
    (thread,) = set(threading.enumerate()) - before
    assert thread.daemon and thread.name.startswith("asyncbridge-loop-")
    runner.close()
    assert not thread.is_alive()
    assert runner.loop.is_closed()


def test_close_is_idempotent_and_run_after_close_is_refused() -> None:
    runner = LoopThread()
    runner.close()
    runner.close()

    async def never_run() -> None:
        raise AssertionError("must not run")

    coro = never_run()
    with pytest.raises(RuntimeError, match=r"called after close\(\); create a new LoopThread"):
        runner.run(coro)
    assert coro.cr_frame is None  # closed, so no "never awaited" warning


def test_run_from_the_loop_thread_is_refused_instead_of_deadlocking(runner: LoopThread) -> None:
    async def calls_itself() -> None:
        runner.run(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="own loop thread, where blocking would deadlock"):
        runner.run(calls_itself(), timeout=5)


def test_close_cancels_pending_calls_and_runs_their_finally() -> None:
    runner = LoopThread()
    started = threading.Event()
    cleaned = threading.Event()
    errors: list[BaseException] = []

    async def long_running() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()

    def caller() -> None:
        try:
            runner.run(long_running())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(5)
    runner.close()
    thread.join(5)
    assert cleaned.is_set()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "closed while this call was waiting" in str(errors[0])


def test_a_future_of_its_own_loop_is_accepted(runner: LoopThread) -> None:
    future = asyncio.run_coroutine_threadsafe(_make_future(), runner.loop).result(5)
    runner.loop.call_soon_threadsafe(future.set_result, "resolved")
    assert runner.run(future, timeout=5) == "resolved"


async def _make_future() -> asyncio.Future[str]:
    return asyncio.get_running_loop().create_future()


def test_errors_timeouts_and_context_behave_like_the_new_loop_api(runner: LoopThread) -> None:
    async def fails() -> None:
        raise asyncio.CancelledError("user message")

    with pytest.raises(asyncio.CancelledError, match="user message"):
        runner.run(fails())

    cleaned = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        runner.run(slow(), timeout=0.1)
    assert cleaned.is_set() and time.monotonic() - started < 5

    token = tag.set("caller")
    try:
        assert runner.run(_read_tag()) == "caller"
    finally:
        tag.reset(token)

    with pytest.raises(TypeError, match="coroutine function"):
        runner.run(slow)  # type: ignore[arg-type]
    # The loop is still healthy after all of the above.
    assert runner.run(asyncio.sleep(0, result="ok")) == "ok"


async def _read_tag() -> str:
    return tag.get()


def test_state_bound_to_the_loop_survives_between_calls(runner: LoopThread) -> None:
    queue_holder: list[asyncio.Queue[int]] = []

    async def make_queue() -> None:
        queue_holder.append(asyncio.Queue())

    async def put(value: int) -> None:
        await queue_holder[0].put(value)

    async def drain() -> list[int]:
        items = []
        while not queue_holder[0].empty():
            items.append(await queue_holder[0].get())
        return items

    runner.run(make_queue())
    for value in range(3):
        runner.run(put(value))
    assert runner.run(drain()) == [0, 1, 2]
