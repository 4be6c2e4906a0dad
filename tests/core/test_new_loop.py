"""run_coroutine_in_new_loop: placement, results, errors, timeouts, context, cleanup."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from asyncbridge_ext import run_coroutine_in_new_loop
from support.forked_child import exit_code_in_forked_child

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def where() -> tuple[int, asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return threading.get_ident(), asyncio.get_running_loop()


def test_runs_on_another_thread_on_a_fresh_loop_that_is_closed_after() -> None:
    first_thread, first_loop = run_coroutine_in_new_loop(where())
    second_thread, second_loop = run_coroutine_in_new_loop(where())
    assert first_thread != threading.get_ident()
    assert second_thread != threading.get_ident()
    assert first_loop is not second_loop
    assert first_loop.is_closed() and second_loop.is_closed()


def test_sequential_calls_reuse_one_worker_thread() -> None:
    idents = {run_coroutine_in_new_loop(where())[0] for _ in range(20)}
    assert len(idents) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_workers_of_its_own() -> None:
    assert run_coroutine_in_new_loop(asyncio.sleep(0, result=1)) == 1  # the parent's worker
    code = exit_code_in_forked_child(
        lambda: run_coroutine_in_new_loop(asyncio.sleep(0, result=3), timeout=10) == 3, 20
    )
    assert code == 0, "the forked child failed or hung (-9) in run_coroutine_in_new_loop"


def test_works_inside_a_running_loop_and_leaves_it_alone() -> None:
    async def cell() -> tuple[int, bool]:
        outer = asyncio.get_running_loop()
        value = run_coroutine_in_new_loop(asyncio.sleep(0, result=41)) + 1
        return value, asyncio.get_running_loop() is outer

    assert asyncio.run(cell()) == (42, True)


def test_nested_calls_from_inside_the_coroutine() -> None:
    async def inner() -> int:
        return 7

    async def outer() -> int:
        return run_coroutine_in_new_loop(inner()) * 6

    assert run_coroutine_in_new_loop(outer()) == 42


class ThreeAwaitable:
    def __await__(self):  # type: ignore[no-untyped-def]
        yield from asyncio.sleep(0).__await__()
        return 3


def test_accepts_any_object_with_dunder_await() -> None:
    assert run_coroutine_in_new_loop(ThreeAwaitable()) == 3


# --- errors --------------------------------------------------------------------------


class AppError(Exception):
    pass


raised: list[BaseException] = []


async def fails_in_user_code() -> None:
    await asyncio.sleep(0)
    error = AppError("the user's message")
    raised.append(error)
    raise error


def test_user_exception_is_the_same_object_with_the_user_frame() -> None:
    with pytest.raises(AppError, match=r"^the user's message$") as info:
        run_coroutine_in_new_loop(fails_in_user_code())
    assert info.value is raised.pop()
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fails_in_user_code" in names
    # Every frame of ours in the traceback is hidden from IPython's traceback printer.
    tb = info.value.__traceback__
    while tb is not None:
        if "asyncbridge_ext" in tb.tb_frame.f_code.co_filename:
            assert tb.tb_frame.f_locals.get("__tracebackhide__") is True, tb.tb_frame
        tb = tb.tb_next


def test_user_cancelled_error_keeps_type_and_message() -> None:
    async def cancels_itself() -> None:
        raise asyncio.CancelledError("stopped by the user's code")

    with pytest.raises(asyncio.CancelledError, match="stopped by the user's code"):
        run_coroutine_in_new_loop(cancels_itself())


def test_user_timeout_error_keeps_its_frame() -> None:
    async def times_out() -> None:
        await asyncio.wait_for(asyncio.sleep(10), 0.01)

    # asyncio.TimeoutError is the builtin TimeoutError only from Python 3.11 on.
    with pytest.raises(asyncio.TimeoutError) as info:
        run_coroutine_in_new_loop(times_out())
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "times_out" in names


def test_keyboard_interrupt_raised_inside_the_coroutine_reaches_the_caller() -> None:
    async def interrupts() -> None:
        raise KeyboardInterrupt("from inside")

    with pytest.raises(KeyboardInterrupt, match="from inside"):
        run_coroutine_in_new_loop(interrupts())
    assert run_coroutine_in_new_loop(asyncio.sleep(0, result="still works")) == "still works"


def test_rejects_a_coroutine_function_and_says_to_call_it() -> None:
    with pytest.raises(TypeError) as info:
        run_coroutine_in_new_loop(where)  # type: ignore[arg-type]
    assert str(info.value) == (
        "run_coroutine_in_new_loop() got the coroutine function where, not a coroutine. "
        "Call it first: run_coroutine_in_new_loop(where(...)) rather than "
        "run_coroutine_in_new_loop(where)."
    )


@pytest.mark.parametrize("value", [42, "text", None, [1, 2]])
def test_rejects_a_non_awaitable_naming_its_type(value: object) -> None:
    with pytest.raises(TypeError, match=f"got {type(value).__name__} "):
        run_coroutine_in_new_loop(value)  # type: ignore[arg-type]


def test_rejects_an_async_generator() -> None:
    async def numbers():  # type: ignore[no-untyped-def]
        yield 1

    gen = numbers()
    with pytest.raises(TypeError, match="async generator"):
        run_coroutine_in_new_loop(gen)


def test_rejects_a_future_bound_to_another_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()
        with pytest.raises(ValueError, match="belongs to event loop"):
            run_coroutine_in_new_loop(future)
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, ValueError),
        (0, ValueError),
        (float("nan"), ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_bad_timeout_is_refused_and_the_coroutine_is_closed(
    timeout: object, error: type[Exception]
) -> None:
    async def never_run() -> None:
        raise AssertionError("must not run")

    coro = never_run()
    with pytest.raises(error, match="timeout"):
        run_coroutine_in_new_loop(coro, timeout=timeout)  # type: ignore[arg-type]
    assert coro.cr_frame is None  # closed: Python will not warn "was never awaited"


def test_a_rejected_coroutine_gives_no_never_awaited_warning() -> None:
    async def never_run() -> None:
        pass

    gc.collect()  # garbage left by earlier tests is collected here, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            run_coroutine_in_new_loop(never_run(), timeout=-1)
        gc.collect()
    assert [str(w.message) for w in caught if "never_run" in str(w.message)] == []


# --- timeout -------------------------------------------------------------------------


def test_timeout_cancels_and_runs_finally_before_raising() -> None:
    finally_ran = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0)  # an await inside finally still runs
            finally_ran.set()

    started = time.monotonic()
    with pytest.raises(
        TimeoutError,
        match=r"did not finish within 0\.2 s; it was cancelled and its finally blocks ran",
    ):
        run_coroutine_in_new_loop(slow(), timeout=0.2)
    assert finally_ran.is_set()
    assert time.monotonic() - started < 5


def test_timeout_on_a_coroutine_that_ignores_cancellation_is_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="asyncbridge_ext"):
            with pytest.raises(TimeoutError, match="did not stop in time"):
                run_coroutine_in_new_loop(stubborn(), timeout=0.1, cancel_grace=0.3)
        assert time.monotonic() - started < 5
        assert "abandoned" in caplog.text
    finally:
        release.set()


def test_the_timeout_error_is_caught_by_both_spellings() -> None:
    # asyncio.TimeoutError is the built-in TimeoutError (Python 3.11+): both spellings work.
    for spelling in (TimeoutError, asyncio.TimeoutError):
        with pytest.raises(spelling):
            run_coroutine_in_new_loop(asyncio.sleep(10), timeout=0.05)


def test_timeout_keeps_a_fast_result() -> None:
    assert run_coroutine_in_new_loop(asyncio.sleep(0, result=5), timeout=10) == 5


# --- context and cleanup ---------------------------------------------------------------


def test_runs_under_a_copy_of_the_callers_context() -> None:
    async def read_and_write() -> str:
        seen = request_id.get()
        request_id.set("changed inside")
        return seen

    token = request_id.set("from the caller")
    try:
        assert run_coroutine_in_new_loop(read_and_write()) == "from the caller"
        assert request_id.get() == "from the caller"
    finally:
        request_id.reset(token)


def test_leftover_tasks_are_cancelled_and_their_finally_runs() -> None:
    cleaned = threading.Event()

    async def background() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()

    async def leaves_a_task() -> str:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)
        return "done"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_coroutine_in_new_loop(leaves_a_task()) == "done"
    assert cleaned.is_set()


def test_async_generators_are_finalized_before_the_loop_closes() -> None:
    finalized = threading.Event()
    kept = []  # still referenced when the loop closes: only shutdown_asyncgens() closes it

    async def ticks():  # type: ignore[no-untyped-def]
        try:
            while True:
                yield 1
                await asyncio.sleep(0)
        finally:
            finalized.set()

    async def takes_one() -> int:
        gen = ticks()
        kept.append(gen)
        return await gen.__anext__()  # left suspended: the loop must close it

    assert run_coroutine_in_new_loop(takes_one()) == 1
    assert finalized.is_set()
    assert kept[0].ag_frame is None  # closed, so dropping it later runs nothing


class RecordingExecutor(ThreadPoolExecutor):
    """Records each shutdown: whether it waited, and whether the loop was still open."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.loop = asyncio.get_running_loop()
        self.shutdowns: list[tuple[bool, bool]] = []

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shutdowns.append((wait, self.loop.is_closed()))
        super().shutdown(wait, cancel_futures=cancel_futures)


def test_default_executor_is_shut_down() -> None:
    # loop.close() alone shuts the executor down without waiting, so a thread that is
    # still running could outlive the call: the tidy-up must wait for it first.
    async def uses_executor() -> tuple[threading.Thread, RecordingExecutor]:
        loop = asyncio.get_running_loop()
        executor = RecordingExecutor()
        loop.set_default_executor(executor)
        return await loop.run_in_executor(None, threading.current_thread), executor

    executor_thread, executor = run_coroutine_in_new_loop(uses_executor())
    assert executor_thread is not threading.current_thread()
    assert executor.shutdowns[0] == (True, False)  # waited for, while the loop was open
    assert not executor_thread.is_alive()  # joined before the call returned


def test_debug_records_of_the_loop_lifecycle(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncbridge_ext"):
        run_coroutine_in_new_loop(asyncio.sleep(0))
    assert "closed a fresh loop" in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_sees_no_pool_of_its_parent_until_it_makes_one() -> None:
    """What %asyncbridge reads (``peek``) in a child is the child's pool, not the parent's."""
    from asyncbridge_ext.core import _pools

    assert run_coroutine_in_new_loop(asyncio.sleep(0, result=1)) == 1
    parent = _pools._fresh_loop_pools.peek()
    assert parent is not None

    def child_sees_none_then_its_own() -> bool:
        if _pools._fresh_loop_pools.peek() is not None:
            return False
        made = _pools._fresh_loop_pools.get()
        return made is not parent and _pools._fresh_loop_pools.peek() is made

    assert exit_code_in_forked_child(child_sees_none_then_its_own, 20) == 0


def test_a_ctrl_c_during_the_hand_over_still_runs_and_closes_the_fresh_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The cancelled coroutine's finally runs on a worker; no grace period is waited out."""
    from asyncbridge_ext.core._pools import fresh_loop_pool
    from asyncbridge_ext.core.workers import worker_status

    pool = fresh_loop_pool()
    real_submit = pool.submit
    handed: list[str] = []

    def interrupted_once(*args: Any) -> None:
        if not handed:
            handed.append("interrupted")
            raise KeyboardInterrupt  # as if Ctrl-C landed before the job was queued
        handed.append("handed over")
        real_submit(*args)

    finished = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def cell() -> None:
        loops.append(asyncio.get_running_loop())
        try:
            await asyncio.sleep(30)
        finally:
            finished.set()

    monkeypatch.setattr(pool, "submit", interrupted_once)
    begun = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="asyncbridge_ext"):
        with pytest.raises(KeyboardInterrupt):
            run_coroutine_in_new_loop(cell(), cancel_grace=5)
    assert time.monotonic() - begun < 2.5  # not the 5 s grace period
    assert handed == ["interrupted", "handed over"]
    assert finished.is_set()  # the coroutine ran and its finally block did too
    assert loops[0].is_closed()
    assert "abandoned" not in caplog.text
    assert worker_status()["run_coroutine_in_new_loop"]["abandoned"] == 0
