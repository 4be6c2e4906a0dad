"""The tasks of a fresh loop, found without walking every task in the process.

Before Python 3.14, ``asyncio.all_tasks(loop)`` visits every task alive in the process,
whatever its loop: with 20,000 tasks pending on a notebook's loop it costs ~10 ms, on
every call of :func:`~asyncbridge_ext.run_coroutine_in_new_loop`. From 3.14 on, asyncio
keeps tasks per thread and ``all_tasks`` of a loop running in this thread does not look
at other threads' tasks (measured: 0.4 µs with or without 20,000 tasks elsewhere), so
there it is used as it is.

Before 3.14 a fresh loop gets a task factory that records each task it makes in a
per-loop ``WeakSet``. Tasks can also be made without it: a library may replace the
factory, or build ``asyncio.Task(coro, loop=loop)`` directly. Such tasks are caught by
a witness that costs one ``sys.getrefcount``: every task (and future, handle, timer,
transport) of a loop holds a strong reference to that loop. Before the caller's code
runs, only our own machinery refers to the fresh loop; after the recorded tasks are
cancelled and awaited, any reference beyond that machinery and the recorded tasks means
something unrecorded may still live on the loop, and then the tidy-up walks
``asyncio.all_tasks(loop)`` as before. So the walk is skipped only when no unrecorded
task can exist; an extra reference of any other kind only costs the walk. Fewer
references than expected would hide tasks, so the count is trusted only while nothing
that held a reference at the start can have let go of it: the caller's thread holds the
loop through fixed references (a cell and one job tuple), a cancellation request from
another thread marks the record as disturbed, and the tidy-up checks that the running
loop and its async generator hooks in this thread are still the fresh loop's own.

The witness needs exact reference counts, so it is used only where they are exact (not
on free-threaded builds) and on asyncio's own selector loops, whose machinery was
checked to hold the same references at both counts; elsewhere every call walks.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from typing import Any

#: Before 3.14, ``asyncio.all_tasks(loop)`` walks every task in the process.
ALL_TASKS_WALKS_THE_PROCESS = sys.version_info < (3, 14)

#: Free-threaded builds ("t" in the ABI flags) split reference counts between threads.
#: Where the flags are not shown (Windows), the count is not relied on either.
#: (``sysconfig`` would say it too, but costs 2 ms of import time.)
_EXACT_REFCOUNTS = "t" not in getattr(sys, "abiflags", "t")


def unfinished_tasks(loop: asyncio.AbstractEventLoop, this: asyncio.Task[Any]) -> list[Any]:
    """The unfinished tasks of ``loop`` except ``this``, by ``asyncio.all_tasks``."""
    return [task for task in asyncio.all_tasks(loop) if task is not this]


def _machinery_in_place(loop: asyncio.AbstractEventLoop) -> bool:
    """Does the loop's own machinery still hold the references it held at the start?

    Code on the loop could drop some of them, and so hide as many unrecorded tasks from
    the count: the async generator hooks the running loop installed in this thread, and
    the running-loop record (which a library may swap for a loop of its own).
    """
    hooks = sys.get_asyncgen_hooks()
    return (
        getattr(hooks.firstiter, "__self__", None) is loop
        and getattr(hooks.finalizer, "__self__", None) is loop
        and asyncio.get_running_loop() is loop
    )


class FreshLoopTasks:
    """Records the tasks made on one fresh loop through its task factory.

    Created on the caller's thread with the loop, before any task; used afterwards only
    on the loop's thread. Holds no reference to the loop itself (it would count in the
    witness and keep the loop alive in a cycle through the factory).
    """

    __slots__ = ("_baseline", "_tasks", "disturbed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._baseline: int | None = None
        #: Set (by any thread) before another thread asks the loop to do something, such
        #: as cancelling the call: its passing references make the count meaningless.
        self.disturbed = False
        if (
            ALL_TASKS_WALKS_THE_PROCESS
            and _EXACT_REFCOUNTS
            and isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)
        ):
            loop.set_task_factory(self._create_task)

    def _create_task(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        """The loop's task factory: asyncio's own ``Task``, recorded. Runs on any thread
        that calls ``loop.create_task`` (the caller's, for the loop's first task)."""
        task = asyncio.Task(coro, loop=loop, **kwargs)
        self._tasks.add(task)
        return task

    def _factory_in_place(self, loop: asyncio.AbstractEventLoop) -> bool:
        # Bound methods compare equal when they bind the same function to the same object.
        return bool(loop.get_task_factory() == self._create_task)

    def _references(self, loop: asyncio.AbstractEventLoop) -> int:
        """References to ``loop`` other than those of recorded tasks (one each)."""
        return sys.getrefcount(loop) - len(self._tasks)

    def note_start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count the references to ``loop`` before the caller's code runs on it.

        Call from the loop's first task, before it awaits anything, with the same
        references held as when :meth:`recorded_are_all` is called later (see there).
        """
        if self._factory_in_place(loop):
            self._baseline = self._references(loop)

    @property
    def recording(self) -> bool:
        """True if the factory was installed and the start was counted."""
        return self._baseline is not None

    def recorded(self, this: asyncio.Task[Any]) -> list[asyncio.Task[Any]]:
        """The recorded tasks not finished yet, except ``this``."""
        if len(self._tasks) == 1 and this in self._tasks:
            return []  # the common case, without iterating a WeakSet (a few µs)
        return [task for task in self._tasks if task is not this and not task.done()]

    def recorded_are_all(self, loop: asyncio.AbstractEventLoop, extra: int) -> bool:
        """True only if no task of ``loop`` can exist that the factory did not record.

        Call when no recorded task is unfinished. ``extra`` is how many references to
        ``loop`` the calling code holds now that it did not hold at :meth:`note_start`
        (a local, a timer).
        """
        if self._baseline is None:
            return False
        references = self._references(loop)  # first: the checks below make temporaries
        if self.disturbed or not self._factory_in_place(loop) or not _machinery_in_place(loop):
            return False
        return references - extra == self._baseline
