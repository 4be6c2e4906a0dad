"""The tasks an expression makes on a loop, found and cancelled if it is refused.

Used by :mod:`asyncbridge_ext.ipython._evaluate` for ``%run_async``: an expression
evaluated on a fresh loop can still schedule work on the loop of the cell that called
it, and a refused expression must leave nothing scheduled behind on either. No IPython
here.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["LoopTasks"]


class LoopTasks:
    """The tasks made on the calling thread's running loop from now on, to cancel them.

    Taken before an expression is evaluated: on the fresh loop that evaluates it, and on
    the caller's loop, since an expression evaluated elsewhere can still schedule work
    there (``asyncio.gather(task, coro())`` puts ``coro()``'s task on ``task``'s loop).
    If the expression is then refused, :meth:`cancel_new` cancels those tasks before
    they ever run. Without a running loop there is nothing to guard.

    Finding them must not cost a walk over every task in the process on each call
    (``asyncio.all_tasks`` before Python 3.14), so:

    - ``fresh=True``: the loop is a fresh loop whose only task is the current one
      (:func:`evaluate_then_await` runs first there); the new tasks are all the others,
      looked up only when something is refused.
    - otherwise: a task factory on the loop records the tasks made through
      ``loop.create_task`` (``ensure_future``, ``gather``, ``create_task``) until
      :meth:`stop`, chained to the loop's own factory if it has one. The loop's thread
      is blocked meanwhile, so the loop runs no task with that factory. A task built
      with ``asyncio.Task(coro, loop=loop)`` directly is not seen. (A snapshot of
      ``asyncio.all_tasks`` would not do either: from Python 3.14 it no longer sees
      tasks that another thread made for this loop, which is how the expression
      makes them.)
    """

    def __init__(self, fresh: bool = False) -> None:
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.before: set[asyncio.Future[Any]] = set()
        self._fresh = fresh
        self._recorded: list[asyncio.Task[Any]] | None = None
        self._previous: Any = None
        if self.loop is None:
            return
        if fresh:
            current = asyncio.current_task()
            self.before = set() if current is None else {current}
        else:
            self._recorded = []
            self._previous = self.loop.get_task_factory()
            self.loop.set_task_factory(self._record)

    def _record(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        """The recording task factory; runs on whichever thread calls ``create_task``."""
        if self._previous is not None:
            task = self._previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        if self._recorded is not None:
            self._recorded.append(task)
        return task

    def stop(self) -> None:
        """Stop recording: put the loop's own task factory back (unless it was replaced
        meanwhile). Call on the loop's thread before the loop runs again."""
        if self.loop is not None and self._recorded is not None:
            if self.loop.get_task_factory() == self._record:
                self.loop.set_task_factory(self._previous)

    def _new(self) -> list[Any]:
        if self.loop is None:
            return []
        if self._recorded is not None:
            return [task for task in self._recorded if not task.done()]
        return [task for task in asyncio.all_tasks(self.loop) if task not in self.before]

    def cancel_new(self, rejected: object) -> int:
        """Cancel the tasks made on the loop since; return how many. Runs on its thread.

        ``rejected`` is the refused value: if it is a future built on those tasks (a
        ``gather``), its outcome is marked as retrieved, so asyncio logs no
        "exception was never retrieved" for it when it is collected.
        """
        self.stop()
        new = self._new()
        for task in new:
            task.cancel()
        if new and asyncio.isfuture(rejected) and rejected not in self.before:
            rejected.add_done_callback(_mark_retrieved)
        return len(new)


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
