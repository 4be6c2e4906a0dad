"""Shared by the run_in_thread tests: no worker thread outlives a test module."""

from __future__ import annotations

from asyncbridge_ext.core._pools import thread_pool
from asyncbridge_ext.core.workers import worker_status

WAIT = 10.0  # the bound of every wait for another thread


def retire_idle_workers() -> None:
    """Make every idle run_in_thread worker exit, and wait until it has."""
    for thread in thread_pool().retire_idle():
        thread.join(WAIT)
        assert not thread.is_alive(), f"{thread.name} did not exit"


def assert_no_worker_left() -> None:
    """Retire the idle workers; then none may be left, busy or abandoned."""
    retire_idle_workers()
    assert worker_status()["run_in_thread"] == {"busy": 0, "idle": 0, "abandoned": 0}
