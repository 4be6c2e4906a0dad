"""The activity record that %asyncbridge reports: timeouts, interrupts and abandoned work."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asyncbridge_ext import run_coroutine_in_new_loop
from asyncbridge_ext.core.activity import ACTIVITY, Activity


def test_since_reports_only_what_happened_after_the_snapshot() -> None:
    activity = Activity()
    activity.count("nested_run.worker")
    activity.count("interrupt")  # before the snapshot only: not in what happened since
    before = activity.snapshot()
    activity.count("nested_run.worker")
    activity.count("timeout")
    assert activity.since(before) == {"nested_run.worker": 1, "timeout": 1}


def test_a_timeout_is_counted() -> None:
    before = ACTIVITY.snapshot()
    with pytest.raises(TimeoutError):
        run_coroutine_in_new_loop(asyncio.sleep(10), timeout=0.05)
    assert ACTIVITY.since(before).get("timeout") == 1


def test_abandoned_work_is_listed_while_it_runs() -> None:
    release = threading.Event()

    async def ignores_cancellation() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    before = ACTIVITY.snapshot()
    with pytest.raises(TimeoutError):
        run_coroutine_in_new_loop(ignores_cancellation(), timeout=0.05, cancel_grace=0.05)
    try:
        assert ACTIVITY.since(before).get("abandoned") == 1
        assert any("timeout" in what for what in ACTIVITY.abandoned_running())
    finally:
        release.set()
    # Once it has finished, it is no longer listed (bounded wait, no sleep-and-hope).
    for _ in range(500):
        if not any("timeout of 0.05" in what for what in ACTIVITY.abandoned_running()):
            break
        threading.Event().wait(0.01)
    assert not any("timeout of 0.05" in what for what in ACTIVITY.abandoned_running())


def test_an_interrupt_reaches_a_call_waiting_off_the_main_thread() -> None:
    """What the extension's SIGINT handling does for a subshell: the call is cancelled,
    its finally runs, and the waiting thread gets KeyboardInterrupt."""
    from asyncbridge_ext.core.interrupts import INTERRUPTS

    started = threading.Event()
    outcome: list[object] = []
    ran_finally = threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            ran_finally.set()

    def caller() -> None:
        try:
            run_coroutine_in_new_loop(slow())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller, name="test-subshell-caller")
    thread.start()
    try:
        assert started.wait(10)
        for _ in range(500):  # the wait registers itself right after handing over
            if INTERRUPTS.waiting_threads():
                break
            threading.Event().wait(0.01)
        assert INTERRUPTS.interrupt_off_main() == 1
    finally:
        thread.join(10)
    assert not thread.is_alive()
    assert ran_finally.is_set()
    assert len(outcome) == 1 and isinstance(outcome[0], KeyboardInterrupt)
    assert INTERRUPTS.waiting_threads() == 0


def test_nested_interrupt_targets_on_one_thread_the_outer_one_is_back_after_the_inner() -> None:
    """A bridged call inside a bridged call (a nested asyncio.run in a %run_async of a
    subshell): the innermost gets the interrupt, and once it ends the outer one does."""
    from asyncbridge_ext.core.interrupts import INTERRUPTS

    got: list[str] = []
    inside, inner_done, finished = threading.Event(), threading.Event(), threading.Event()
    outer_only = threading.Event()

    def caller() -> None:
        with INTERRUPTS.target(lambda: got.append("outer")):
            with INTERRUPTS.target(lambda: got.append("inner")):
                inside.set()
                inner_done.wait(10)
            outer_only.set()  # the inner block has ended
            finished.wait(10)

    thread = threading.Thread(target=caller, name="test-nested-targets")
    thread.start()
    try:
        assert inside.wait(10)
        assert INTERRUPTS.interrupt_off_main() == 1
        assert got == ["inner"]
        inner_done.set()
        assert outer_only.wait(10)
        assert INTERRUPTS.interrupt_off_main() == 1
        assert got == ["inner", "outer"]
    finally:
        inner_done.set()
        finished.set()
        thread.join(10)
    assert not thread.is_alive()
    assert INTERRUPTS.waiting_threads() == 0
