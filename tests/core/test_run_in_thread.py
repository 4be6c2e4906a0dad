"""run_in_thread: placement, results, errors, thread reuse (stopping: test_run_in_thread_stop)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import threading
import traceback
import warnings
from collections.abc import Coroutine, Iterator
from typing import Any

import anyio
import pytest
from asgiref.sync import async_to_sync

from asyncbridge_ext import run_coroutine_in_new_loop, run_in_thread
from asyncbridge_ext.core._pools import thread_pool
from support.forked_child import exit_code_in_forked_child
from support.thread_pool_check import WAIT, assert_no_worker_left, retire_idle_workers

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@pytest.fixture(autouse=True, scope="module")
def _no_worker_left_behind() -> Iterator[None]:
    yield
    assert_no_worker_left()


def loop_in_this_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --- where it runs, what comes back -------------------------------------------------------


def test_returns_the_value_from_a_named_worker_thread_with_no_loop() -> None:
    name, ident, loop_running = run_in_thread(
        lambda: (threading.current_thread().name, threading.get_ident(), loop_in_this_thread())
    )
    assert name.startswith("asyncbridge-thread-")
    assert ident != threading.get_ident()
    assert loop_running is False


def test_passes_positional_and_keyword_arguments() -> None:
    def join(*parts: str, sep: str) -> str:
        return sep.join(parts)

    assert run_in_thread(join, "a", "b", sep="-") == "a-b"


def test_the_functions_own_exception_comes_back_with_its_frames() -> None:
    error = LookupError("missing key")

    def fails_deep_inside() -> None:
        raise error

    with pytest.raises(LookupError) as caught:
        run_in_thread(fails_deep_inside)
    assert caught.value is error
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "fails_deep_inside"


def test_bridge_frames_are_marked_hidden() -> None:
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError) as caught:
        run_in_thread(fails)
    tb = caught.value.__traceback__
    shown = []
    while tb is not None:
        if not tb.tb_frame.f_locals.get("__tracebackhide__", False):
            shown.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert shown[-1] == "fails"
    assert not any(
        name in ("run_in_thread", "wait_for_outcome", "wait_bounded", "run") for name in shown
    )


def test_works_while_a_loop_runs_in_the_callers_thread() -> None:
    async def cell() -> tuple[bool, bool]:
        return loop_in_this_thread(), run_in_thread(loop_in_this_thread)

    assert asyncio.run(cell()) == (True, False)


async def answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_libraries_that_refuse_a_running_loop_work_there() -> None:
    async def cell() -> tuple[int, int]:
        with pytest.raises(RuntimeError):  # the refusal the user meets in a cell
            anyio.run(answer)
        return run_in_thread(anyio.run, answer), run_in_thread(async_to_sync(answer))

    assert asyncio.run(cell()) == (42, 42)


def test_the_callers_context_variables_are_visible_and_changes_stay_in_the_copy() -> None:
    def read_then_set() -> str:
        seen = request_id.get()
        request_id.set("changed in the worker")
        return seen

    token = request_id.set("req-7")
    try:
        assert run_in_thread(read_then_set) == "req-7"
        assert request_id.get() == "req-7"
    finally:
        request_id.reset(token)


# --- which worker thread ------------------------------------------------------------------


def test_consecutive_calls_share_one_thread_and_its_thread_local_state() -> None:
    local = threading.local()

    def count_calls() -> tuple[int, int]:
        local.calls = getattr(local, "calls", 0) + 1
        return threading.get_ident(), local.calls

    first = run_in_thread(count_calls)
    second = run_in_thread(count_calls)
    assert second == (first[0], first[1] + 1)


def test_a_default_event_loop_set_in_one_call_is_there_in_the_next() -> None:
    def set_default_loop() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop

    def use_default_loop() -> tuple[asyncio.AbstractEventLoop, int]:
        loop = asyncio.get_event_loop()
        return loop, loop.run_until_complete(answer())

    loop = run_in_thread(set_default_loop)
    try:
        assert run_in_thread(use_default_loop) == (loop, 42)
    finally:
        run_in_thread(asyncio.set_event_loop, None)
        loop.close()


def test_a_nested_call_gets_another_thread_without_deadlock() -> None:
    def outer() -> tuple[int, int]:
        return threading.get_ident(), run_in_thread(threading.get_ident, timeout=WAIT)

    outer_ident, inner_ident = run_in_thread(outer, timeout=WAIT)
    assert outer_ident != inner_ident
    assert run_in_thread(threading.get_ident) == outer_ident  # the first one, free again


def test_calls_from_many_threads_run_at_once_each_on_its_own_worker() -> None:
    callers = 6
    together = threading.Barrier(callers, timeout=WAIT)  # breaks unless all run at once
    idents: list[int] = []
    errors: list[BaseException] = []

    def meet() -> int:
        together.wait()
        return threading.get_ident()

    def caller() -> None:
        try:
            idents.append(run_in_thread(meet, timeout=WAIT))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    assert errors == []
    assert len(set(idents)) == callers


def test_past_the_thread_limit_a_call_is_refused_instead_of_waiting() -> None:
    pool = thread_pool()
    for idle in pool.retire_idle():  # start from no threads at all
        idle.join(WAIT)
    saved = pool.max_threads
    pool.max_threads = 2

    def nest(depth: int) -> int:
        return depth if depth == 3 else run_in_thread(nest, depth + 1, timeout=WAIT)

    try:
        with pytest.raises(RuntimeError, match=r"has 2 worker threads busy \(0 of them abandoned"):
            run_in_thread(nest, 1, timeout=WAIT)
        assert run_in_thread(nest, 2, timeout=WAIT) == 3
    finally:
        pool.max_threads = saved


def test_idle_extra_threads_exit_and_the_first_one_stays() -> None:
    pool = thread_pool()
    saved = pool.idle_seconds
    pool.idle_seconds = 0.05
    try:
        first_name, extra = run_in_thread(
            lambda: (
                threading.current_thread().name,
                run_in_thread(threading.current_thread, timeout=WAIT),
            )
        )
        extra.join(WAIT)
        assert not extra.is_alive()
        assert run_in_thread(lambda: threading.current_thread().name) == first_name
    finally:
        pool.idle_seconds = saved


def test_a_thousand_calls_leave_no_thread_or_file_descriptor_behind() -> None:
    retire_idle_workers()  # no extra worker may exit while we count
    run_in_thread(int)  # the first worker exists before counting
    gc.collect()
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for number in range(1000):
            assert run_in_thread(abs, -number) == number
    gc.collect()
    assert threading.active_count() == threads_before
    if fds_before:
        assert len(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_workers_of_its_own() -> None:
    run_in_thread(int)  # the parent has a worker, which the child will not have
    code = exit_code_in_forked_child(lambda: run_in_thread(abs, -3, timeout=WAIT) == 3, WAIT * 2)
    assert code == 0, "the forked child failed or hung (-9) in run_in_thread"


# --- errors -------------------------------------------------------------------------------


def test_something_not_callable_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"expects a function to call, got int 5\. Pass"):
        run_in_thread(5)  # type: ignore[call-overload]


def test_a_coroutine_function_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"run_coroutine_in_new_loop\(answer\(\.\.\.\)\)"):
        run_in_thread(answer)


def test_a_coroutine_is_refused_and_closed() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coro = answer()
        with pytest.raises(TypeError, match=r"got a coroutine \(answer\), not a function"):
            run_in_thread(coro)  # type: ignore[arg-type]
        assert coro.cr_frame is None  # closed: no "never awaited" warning
        gc.collect()


def test_a_function_that_returns_a_coroutine_is_refused() -> None:
    made: list[Coroutine[Any, Any, int]] = []

    def gives_a_coroutine() -> Coroutine[Any, Any, int]:
        made.append(answer())
        return made[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="returned a coroutine instead of running it"):
            run_in_thread(gives_a_coroutine)
        assert made[0].cr_frame is None  # closed: no "never awaited" warning
        made.clear()
        gc.collect()


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_a_bad_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        run_in_thread(int, timeout=timeout)


def test_a_non_number_timeout_is_refused() -> None:
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None"):
        run_in_thread(int, timeout="5")  # type: ignore[arg-type]


def test_run_coroutine_in_new_loop_inside_the_worker_works_too() -> None:
    assert run_in_thread(run_coroutine_in_new_loop, answer()) == 42
