"""The private names of asyncio that asyncbridge_ext/core/asyncio_internals.py relies on.

Each test fails, naming the attribute, the day CPython renames or removes one or changes
what it does; then _asyncio_private.py (the only module that touches them) must change.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from asyncio import events, futures, tasks
from typing import Any

from asyncbridge_ext.core import asyncio_internals as private

_tasks: Any = tasks
PY314 = sys.version_info >= (3, 14)


def test_running_loop_marker_reads_and_sets_the_thread_s_running_loop() -> None:
    assert private.get_running_loop_or_none is events._get_running_loop
    assert private.set_running_loop is events._set_running_loop

    async def inside() -> None:
        loop = asyncio.get_running_loop()
        assert private.get_running_loop_or_none() is loop
        private.set_running_loop(None)
        try:
            assert private.get_running_loop_or_none() is None
        finally:
            private.set_running_loop(loop)

    assert private.get_running_loop_or_none() is None
    asyncio.run(inside())


def test_the_current_task_is_put_aside_per_thread_from_3_14() -> None:
    if not PY314:
        assert private.swap_current_task is None
        return
    swap = private.swap_current_task
    assert swap is not None, "asyncio.tasks._swap_current_task is gone"

    async def inside() -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert swap(loop, None) is me
        assert asyncio.current_task() is None
        assert swap(loop, me) is None
        assert asyncio.current_task() is me

    asyncio.run(inside())


def test_thread_event_loop_reads_the_loop_set_for_this_thread() -> None:
    """Checked in a thread of its own: the main thread's loop belongs to pytest."""
    seen: list[Any] = []

    def in_thread() -> None:
        seen.append(private.thread_event_loop())
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            seen.append(private.thread_event_loop() is loop)
            asyncio.set_event_loop(None)
            seen.append(private.thread_event_loop())
        finally:
            loop.close()

    worker = threading.Thread(target=in_thread, name="asyncbridge-test-thread-loop")
    worker.start()
    worker.join(30)
    assert not worker.is_alive()
    assert seen == [None, True, None]


def test_loop_of_future_and_loop_thread_id() -> None:
    assert callable(futures._get_loop), "asyncio.futures._get_loop is gone"  # type: ignore[attr-defined]

    async def inside() -> None:
        loop = asyncio.get_running_loop()
        assert private.loop_of_future(loop.create_future()) is loop
        assert private.loop_thread_id(loop, -1) == threading.get_ident()

    asyncio.run(inside())
    loop = asyncio.new_event_loop()
    try:
        assert private.loop_thread_id(loop, -1) == -1  # not running: no thread
    finally:
        loop.close()
    assert private.loop_thread_id(object(), 7) == 7  # not asyncio's own loop


def test_the_names_the_archived_patch_undo_needs_exist() -> None:
    """3.14+ only: before, nest-asyncio2 replaces these itself and nothing is undone."""
    if not PY314:
        assert private.undo_archived_nest_patch() == []
        return
    import _asyncio

    for name in (
        "_PyTask",
        "_CTask",
        "_current_tasks",
        "_scheduled_tasks",
        *(
            f"_{kind}_{what}"
            for kind in ("py", "c")
            for what in (
                "enter_task",
                "leave_task",
                "swap_current_task",
                "register_task",
                "register_eager_task",
                "unregister_eager_task",
                "current_task",
            )
        ),
    ):
        assert hasattr(tasks, name), f"asyncio.tasks.{name} is gone"
    assert asyncio.Task is _asyncio.Task and asyncio.Future is _asyncio.Future
    assert events.get_event_loop is _asyncio.get_event_loop
    assert hasattr(futures, "_PyFuture") and hasattr(futures, "_CFuture")


UNDO_SCRIPT = """
import asyncio, asyncio.tasks as tasks, _asyncio
import nest_asyncio, nest_asyncio2
from asyncbridge_ext.core import asyncio_internals as private

async def nested():
    await asyncio.sleep(0.01)
    return asyncio.current_task() is not None

async def cell(gate):
    await gate.wait()
    return asyncio.run(nested()), asyncio.current_task() is not None

async def main():
    loop = asyncio.get_running_loop()
    nest_asyncio.apply()
    gate = asyncio.Event()
    leftover = loop.create_task(cell(gate))  # a pure-Python task of the archived patch
    await asyncio.sleep(0)
    print("archived:", asyncio.Task is tasks._PyTask)
    print("restored:", private.undo_archived_nest_patch())
    del asyncio._nest_patched, type(loop)._nest_patched
    nest_asyncio2.apply(loop)
    gate.set()
    print("Task:", asyncio.Task is _asyncio.Task, tasks.Task is _asyncio.Task)
    print("leftover:", await asyncio.wait_for(leftover, 10))
    print("fresh:", await asyncio.wait_for(loop.create_task(cell(gate)), 10))
    print("again:", private.undo_archived_nest_patch())

asyncio.run(main())
"""


def test_undo_archived_nest_patch_gives_asyncio_back_its_c_tasks() -> None:
    """In a process of its own: the patches cannot be undone for the rest of pytest.

    Before 3.14 nothing is put back (nest-asyncio2 replaces Task and Future itself).
    """
    done = subprocess.run(
        [sys.executable, "-c", UNDO_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "archived: True"
    if not PY314:
        assert lines[1] == "restored: []"
        assert lines[3:] == ["leftover: (True, True)", "fresh: (True, True)", "again: []"]
        return
    assert lines[1] == (
        "restored: ['Task', 'Future', 'get_event_loop', 'policy.get_event_loop', "
        "'current-task bookkeeping']"
    )
    assert lines[2:] == [
        "Task: True True",
        "leftover: (True, True)",
        "fresh: (True, True)",
        "again: []",
    ]
    assert "Cannot enter into task" not in done.stderr


def test_runner_loop_is_the_loop_a_runner_runs_on() -> None:
    runner = asyncio.Runner()
    assert private.runner_loop(runner) is None, "asyncio.Runner._loop is gone or renamed"
    with runner:
        assert private.runner_loop(runner) is runner.get_loop()
