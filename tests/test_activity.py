"""The activity record that %asyncbridge reports: timeouts, interrupts and abandoned work."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asyncbridge_ext import run_coroutine_in_new_loop
from asyncbridge_ext.activity import ACTIVITY, Activity


def test_since_reports_only_what_happened_after_the_snapshot() -> None:
    activity = Activity()
    activity.count("nested_run.worker")
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
