"""Tidy an event loop before it is closed: what ``asyncio.run`` does, bounded in time.

Shared by the fresh loops of :func:`~asyncbridge_ext.run_coroutine_in_new_loop` (after
each call) and by :meth:`LoopThread.close <asyncbridge_ext.LoopThread.close>`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ._loop_tasks import FreshLoopTasks, unfinished_tasks

logger = logging.getLogger(__name__)


#: References to the loop held, besides those at :meth:`FreshLoopTasks.note_start`, when
#: :func:`_leftovers` asks :meth:`FreshLoopTasks.recorded_are_all`: the ``loop`` local
#: of :func:`tidy_loop_before_close`, the ``loop`` argument of :func:`_leftovers`, and
#: the grace timer.
_TIDY_REFERENCES = 3


async def tidy_loop_before_close(
    grace: float,
    what: str,
    tasks: FreshLoopTasks | None = None,
) -> None:
    """Cancel every other task, finalize async generators, shut down the default executor.

    Runs as a task on the loop being tidied, on that loop's thread. One timer bounds the
    whole of it by ``grace`` seconds (cheaper than a ``wait_for`` per step, which would
    start a task each on Python 3.11); past that it gives up with a logged warning and
    the loop is closed anyway. ``what`` names the loop in that warning.

    The other tasks are found with ``asyncio.all_tasks(loop)``, or, for a fresh loop
    whose ``tasks`` recorded them, from that record, walking ``all_tasks`` as well
    when the record cannot vouch that it holds every task (see
    :mod:`asyncbridge_ext.core._loop_tasks`).
    """
    loop = asyncio.get_running_loop()
    this = asyncio.current_task()
    if this is None:  # pragma: no cover - always awaited from a task
        return
    timer = loop.call_later(grace, this.cancel)
    try:
        # One turn of the loop first: async generators the coroutine dropped have their
        # aclose() scheduled by a finalizer callback; let it create those tasks now.
        await asyncio.sleep(0)
        # Again after each round: a task being cancelled may start another one.
        leftovers = _leftovers(loop, this, tasks)
        while leftovers:
            for task in leftovers:
                task.cancel()
            await asyncio.wait(leftovers)
            _report_failed_leftovers(loop, leftovers)
            leftovers = _leftovers(loop, this, tasks)
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()
    except asyncio.CancelledError:
        logger.warning(
            "asyncbridge_ext: tidying %s before closing it (cancelling leftover tasks, "
            "closing async generators, shutting down its executor) took over %.1f s; gave up",
            what,
            grace,
        )
    finally:
        timer.cancel()


def _leftovers(
    loop: asyncio.AbstractEventLoop, this: asyncio.Task[Any], tasks: FreshLoopTasks | None
) -> list[asyncio.Task[Any]]:
    """The loop's unfinished tasks other than ``this``: from the record when it has
    some, or can vouch that there are none; else by walking ``asyncio.all_tasks``."""
    if tasks is not None and tasks.recording:
        recorded = tasks.recorded(this)
        if recorded or tasks.recorded_are_all(loop, _TIDY_REFERENCES):
            return recorded
    return unfinished_tasks(loop, this)


def _report_failed_leftovers(
    loop: asyncio.AbstractEventLoop, tasks: list[asyncio.Task[Any]]
) -> None:
    """Hand exceptions of leftover tasks to the loop's handler, as ``asyncio.run`` does."""
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception in a task left running on the loop",
                    "exception": task.exception(),
                    "task": task,
                }
            )
