"""run_in_thread: timeout and Ctrl-C stop the work, not only the wait; the rest is abandoned."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from asyncbridge_ext import run_coroutine_in_new_loop, run_in_thread
from asyncbridge_ext.core._pools import thread_pool
from asyncbridge_ext.core.activity import ACTIVITY
from asyncbridge_ext.core.interrupts import INTERRUPTS
from asyncbridge_ext.core.workers import worker_status
from support.thread_pool_check import WAIT, assert_no_worker_left, retire_idle_workers


@pytest.fixture(autouse=True, scope="module")
def _no_worker_left_behind() -> Iterator[None]:
    yield
    assert_no_worker_left()


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
    # A long grace: the second way of stopping (StopRequested raised in the worker) only
    # comes halfway through it, 10 s in, so a return within 2 s means the tasks were
    # cancelled at once.
    with pytest.raises(
        TimeoutError,
        match=r"slow_asyncio_run\(\) did not finish within 0\.3 s; it was cancelled and its "
        r"finally blocks ran$",
    ):
        run_in_thread(slow_asyncio_run, started, finally_ran, timeout=0.3, cancel_grace=20)
    assert time.monotonic() - begun < 2  # cancelled at once, not after the grace period
    assert finally_ran.is_set()  # what the message says


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


def test_a_bridged_wait_inside_the_function_passes_the_stop_on() -> None:
    # The worker waits for a coroutine on another thread: the exception raised in the
    # worker lands in that wait within one slice, which then cancels the coroutine.
    finally_ran = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            finally_ran.set()

    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        run_in_thread(run_coroutine_in_new_loop, slow(), timeout=0.3)
    assert finally_ran.is_set()


def test_a_loop_running_forever_with_no_task_is_woken_and_stopped() -> None:
    closed = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_forever()  # nothing to cancel: only the raised exception stops it
        finally:
            loop.close()
            closed.set()

    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        run_in_thread(serve, timeout=0.2, cancel_grace=1.0)
    assert closed.is_set()


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
    stopped = 0

    def spin_for(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: stops land all around the end
    try:
        for step in range(150):  # timeouts around the function's own end
            try:
                run_in_thread(spin_for, 0.002 + (step % 50) * 0.0001, timeout=0.004)
            except TimeoutError:
                stopped += 1
            assert run_in_thread(threading.get_ident) == ident  # nothing pending there
    finally:
        sys.setswitchinterval(switch_interval)
    assert stopped  # the race was exercised at least once


def test_a_ctrl_c_during_the_hand_over_raises_at_once_and_frees_the_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ident = run_in_thread(threading.get_ident)
    pool = thread_pool()

    def interrupted_hand_over(*args: object) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C landed before the job was queued

    with monkeypatch.context() as patch:
        patch.setattr(pool, "submit", interrupted_hand_over)
        begun = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="asyncbridge_ext"):
            with pytest.raises(KeyboardInterrupt):
                run_in_thread(int, cancel_grace=5)
    assert time.monotonic() - begun < 2  # no grace period waited out for nothing
    assert "abandoned" not in caplog.text
    assert run_in_thread(threading.get_ident) == ident  # the worker is free again


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
        assert worker_status()["run_in_thread"]["abandoned"] == 1
        assert run_in_thread(threading.current_thread) is not first  # not reused
    finally:
        release.set()
    first.join(WAIT)  # it exits once its function returns
    assert not first.is_alive()
    assert not any(first.name in what for what in ACTIVITY.abandoned_running())
    assert worker_status()["run_in_thread"]["abandoned"] == 0


@pytest.mark.parametrize("shape", ["Session", "DispatcherSession"])
def test_a_timeout_stops_the_call_and_leaves_a_library_session_alive(shape: str) -> None:
    from support import library_session

    session = run_in_thread(getattr(library_session, shape))
    started = threading.Event()
    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        run_in_thread(session.wait, 60, started, timeout=0.3)
    assert started.is_set() and session.waits_cleaned_up == 1
    assert not session.connection.done()  # the library's own task was not cancelled
    assert run_in_thread(session.ping, timeout=5) == "pong"
    run_in_thread(session.close)


def test_asyncio_run_keeps_its_own_shutdown_on_timeout() -> None:
    finally_ran: list[str] = []
    started = threading.Event()

    async def background() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            finally_ran.append("background")

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(background())
        try:
            started.set()
            await asyncio.sleep(60)
        finally:
            finally_ran.append("main")
            del task

    with pytest.raises(TimeoutError, match="its finally blocks ran"):
        run_in_thread(asyncio.run, main(), timeout=0.3)
    # The main task was cancelled; asyncio.run then cancelled the rest as it shut down.
    assert started.is_set() and sorted(finally_ran) == ["background", "main"]


def test_a_loop_left_as_the_running_loop_of_the_worker_is_kept_between_calls() -> None:
    from asyncbridge_ext.core.loops import kept_loops

    loop = asyncio.new_event_loop()

    def leave_it_running() -> None:  # what Playwright's sync API leaves behind
        asyncio.events._set_running_loop(loop)

    def kept() -> list[asyncio.AbstractEventLoop]:
        try:
            return kept_loops()
        finally:
            asyncio.events._set_running_loop(None)

    try:
        assert run_in_thread(kept_loops) == []
        run_in_thread(leave_it_running)
        assert run_in_thread(kept) == [loop]
    finally:
        loop.close()


def test_the_thread_limit_counts_abandoned_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two calls stuck in a C call, abandoned, fill a limit of two: the next is refused."""
    retire_idle_workers()
    pool = thread_pool()
    monkeypatch.setattr(pool, "max_threads", 2)
    release = threading.Event()
    stuck = []
    try:
        for _ in range(2):
            with pytest.raises(TimeoutError, match="did not stop in time"):
                run_in_thread(release.wait, timeout=0.05, cancel_grace=0.1)
        assert worker_status()["run_in_thread"] == {"busy": 0, "idle": 0, "abandoned": 2}  # full
        stuck = [w.thread for w in pool._abandoned]
        with pytest.raises(RuntimeError) as refused:
            run_in_thread(int)
        assert str(refused.value).startswith(
            "run_in_thread() has 2 worker threads busy (2 of them abandoned, stuck in "
            "blocking calls); it starts no more."
        )
        assert "restart the kernel" in str(refused.value)
    finally:
        release.set()
    for thread in stuck:
        thread.join(WAIT)  # each exits once its function returns
        assert not thread.is_alive()
    assert run_in_thread(int) == 0  # room again: the stuck ones are gone
