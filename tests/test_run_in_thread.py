"""run_in_thread: placement, results, errors, thread reuse, and stopping the work."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator

import anyio
import pytest
from asgiref.sync import async_to_sync

from asyncbridge_ext import run_coroutine_in_new_loop, run_in_thread
from asyncbridge_ext._interrupts import INTERRUPTS
from asyncbridge_ext._thread_pool import thread_pool
from asyncbridge_ext.activity import ACTIVITY

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")

WAIT = 10.0  # the bound of every wait for another thread


@pytest.fixture(autouse=True, scope="module")
def _no_worker_left_behind() -> Iterator[None]:
    yield
    for thread in thread_pool().retire_idle():
        thread.join(WAIT)
        assert not thread.is_alive()
    assert thread_pool().status() == {"busy": 0, "idle": 0, "abandoned": 0}


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
    assert not any(name in ("run_in_thread", "wait_for_outcome", "_run_job") for name in shown)


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
    with pytest.raises(TypeError, match="returned a coroutine instead of running it"):
        run_in_thread(lambda: answer())


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_a_bad_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        run_in_thread(int, timeout=timeout)


def test_a_non_number_timeout_is_refused() -> None:
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None"):
        run_in_thread(int, timeout="5")  # type: ignore[arg-type]


# --- timeout and interrupt stop the work --------------------------------------------------


def slow_asyncio_run(started: threading.Event, finally_ran: threading.Event) -> None:
    async def slow() -> None:
        try:
            started.set()
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)  # an await in finally still runs on that loop
            finally_ran.set()

    asyncio.run(slow())


def test_a_timeout_cancels_the_tasks_of_a_loop_running_in_the_worker() -> None:
    started, finally_ran = threading.Event(), threading.Event()
    begun = time.monotonic()
    with pytest.raises(TimeoutError, match=r"slow_asyncio_run\(\) did not finish within 0\.3 s"):
        run_in_thread(slow_asyncio_run, started, finally_ran, timeout=0.3)
    assert time.monotonic() - begun < 2  # cancelled at once, not after the grace period
    assert finally_ran.is_set()


def test_a_timeout_stops_a_uvloop_running_in_the_worker() -> None:
    uvloop = pytest.importorskip("uvloop")
    started, finally_ran = threading.Event(), threading.Event()

    async def slow() -> None:
        try:
            started.set()
            await asyncio.sleep(60)
        finally:
            finally_ran.set()

    begun = time.monotonic()
    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        run_in_thread(uvloop.run, slow(), timeout=0.3)
    assert time.monotonic() - begun < 2
    assert finally_ran.is_set()


def test_a_task_that_never_yields_gets_the_exception_after_half_the_grace() -> None:
    finally_ran = threading.Event()

    async def hog() -> None:
        try:
            while True:  # the loop never gets control back to run the cancellation
                pass
        finally:
            finally_ran.set()

    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        run_in_thread(asyncio.run, hog(), timeout=0.2, cancel_grace=1.0)
    assert finally_ran.is_set()


class Spinner:
    """A plain-Python busy loop whose counter shows whether it still runs."""

    def __init__(self) -> None:
        self.count = 0
        self.started = threading.Event()
        self.finally_ran = threading.Event()

    def spin(self) -> None:
        try:  # the marker inside: the stop may land right after it
            self.started.set()
            while True:
                self.count += 1
        finally:
            self.finally_ran.set()


def test_a_timeout_stops_a_plain_python_busy_loop() -> None:
    spinner = Spinner()
    ident = run_in_thread(threading.get_ident)
    with pytest.raises(TimeoutError, match="it was cancelled and its finally blocks ran"):
        run_in_thread(spinner.spin, timeout=0.3)
    assert spinner.finally_ran.is_set()  # the loop left: the counter no longer moves
    stopped_at = spinner.count
    assert run_in_thread(threading.get_ident) == ident  # same worker, free and usable
    assert spinner.count == stopped_at


def interrupt_main_when(marker: threading.Event) -> threading.Thread:
    """Send SIGINT to the main thread once ``marker`` shows the work is running."""

    def send() -> None:
        if marker.wait(WAIT):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=send, name="test-interrupter")
    thread.start()
    return thread


@pytest.mark.skipif(sys.platform == "win32", reason="uses pthread_kill")
def test_ctrl_c_in_the_waiting_caller_stops_a_loop_in_the_worker() -> None:
    started, finally_ran = threading.Event(), threading.Event()
    interrupter = interrupt_main_when(started)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_in_thread(slow_asyncio_run, started, finally_ran)
    finally:
        interrupter.join(WAIT)
    assert finally_ran.is_set()


@pytest.mark.skipif(sys.platform == "win32", reason="uses pthread_kill")
def test_ctrl_c_in_the_waiting_caller_stops_a_busy_loop() -> None:
    spinner = Spinner()
    before = ACTIVITY.snapshot()
    interrupter = interrupt_main_when(spinner.started)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_in_thread(spinner.spin)
    finally:
        interrupter.join(WAIT)
    assert spinner.finally_ran.is_set()
    assert ACTIVITY.since(before).get("interrupt") == 1
    assert "abandoned" not in ACTIVITY.since(before)


def test_an_interrupt_reaches_a_caller_off_the_main_thread() -> None:
    """What the extension does for a subshell: the registered wait raises KeyboardInterrupt."""
    spinner = Spinner()
    outcome: list[BaseException] = []

    def caller() -> None:
        try:
            run_in_thread(spinner.spin)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller, name="test-subshell")
    thread.start()
    try:
        assert spinner.started.wait(WAIT)  # the wait registers before the hand-over
        assert INTERRUPTS.waiting_threads() == 1
        assert INTERRUPTS.interrupt_off_main() == 1
    finally:
        thread.join(WAIT)
    assert [type(exc) for exc in outcome] == [KeyboardInterrupt]
    assert spinner.finally_ran.is_set()


def test_a_stop_arriving_as_the_function_returns_never_reaches_the_next_call() -> None:
    ident = run_in_thread(threading.get_ident)

    def spin_for(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    for step in range(60):  # timeouts around the function's own end, before and after it
        try:
            run_in_thread(spin_for, 0.002 + step * 0.0001, timeout=0.004)
        except TimeoutError:
            pass
        assert run_in_thread(threading.get_ident) == ident


@pytest.mark.parametrize("blocking_call", ["event_wait", "time_sleep"])
def test_work_blocked_in_a_c_call_is_abandoned_after_the_grace_period(
    blocking_call: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Event.wait() and time.sleep() (like a lock, a socket read) block inside one C call:
    # the exception raised in that thread lands only when the call returns.
    release = threading.Event()

    def blocked() -> None:
        if blocking_call == "event_wait":
            release.wait()
        else:
            time.sleep(1.5)

    before = ACTIVITY.snapshot()
    first = run_in_thread(threading.current_thread)
    begun = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="asyncbridge_ext"):
            with pytest.raises(TimeoutError, match="did not stop in time"):
                run_in_thread(blocked, timeout=0.2, cancel_grace=0.4)
        assert time.monotonic() - begun < 1.5
        assert "the function test_work_blocked" in caplog.text and "abandoned" in caplog.text
        assert ACTIVITY.since(before).get("abandoned") == 1
        assert any(first.name in what for what in ACTIVITY.abandoned_running())
        assert thread_pool().status()["abandoned"] == 1
        assert run_in_thread(threading.current_thread) is not first  # not reused
    finally:
        release.set()
    first.join(WAIT)  # it exits once its function returns
    assert not first.is_alive()
    assert not any(first.name in what for what in ACTIVITY.abandoned_running())
    assert thread_pool().status()["abandoned"] == 0


def test_run_coroutine_in_new_loop_inside_the_worker_works_too() -> None:
    assert run_in_thread(run_coroutine_in_new_loop, answer()) == 42
