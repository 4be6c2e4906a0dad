"""Evaluate a magic's code where it runs: on the loop that awaits it, or on a loop-free thread.

Used by the magics; no IPython here. The expression's code is evaluated by
:func:`evaluate_then_await` *inside* the coroutine that a fresh loop runs, so every
future it makes (``asyncio.gather``, ``create_task``, ``shield``, ``run_in_executor``)
belongs to the loop that awaits it. A value that cannot be awaited there is refused
with :class:`ExpressionRejected`; a future bound to the caller's own loop can then be
served by :func:`await_on_reentrant_loop` when that loop is re-entrant (nest mode).
:class:`LoopTasks` makes sure a refused expression leaves nothing scheduled behind.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from types import CodeType
from typing import Any

from ..core.waiting import as_coroutine, wait_bounded

__all__ = [
    "ExpressionRejected",
    "LoopTasks",
    "await_on_reentrant_loop",
    "evaluate_expression",
    "evaluate_then_await",
    "execute_on_this_loop",
    "foreign_future_message",
    "run_cell_code",
]


class ExpressionRejected(Exception):
    """The expression's value cannot be awaited where it was evaluated.

    ``future`` is set when the value is a future bound to another event loop (which
    may still be served on that loop); otherwise ``str(self)`` says what was wrong and
    how to fix it.
    """

    def __init__(self, message: str, future: asyncio.Future[Any] | None = None) -> None:
        super().__init__(message)
        self.future = future


async def evaluate_then_await(
    code: CodeType, namespace: dict[str, Any], caller: str, usage: Callable[[str], str]
) -> Any:
    """Evaluate ``code`` in ``namespace`` on the running loop, then await its value.

    Runs as (part of) the coroutine on a fresh loop in a worker thread, so the
    expression itself runs there too, under the caller's copied context. Raises
    :class:`ExpressionRejected` for a value that is not awaitable (the message names
    its type and the fix, spelled with ``usage``) or a future of another loop; the
    tasks the expression made on this loop are then cancelled before their first step.
    """
    __tracebackhide__ = True
    tasks = LoopTasks(fresh=True)
    value = eval(code, namespace)
    loop = asyncio.get_running_loop()
    try:
        if asyncio.isfuture(value) and value.get_loop() is not loop:
            raise ExpressionRejected(f"{caller} got a future of another loop", value)
        try:
            awaitable = as_coroutine(value, caller=caller, loop=loop, usage=usage)
        except (TypeError, ValueError) as exc:
            raise ExpressionRejected(str(exc)) from None
    except ExpressionRejected:
        # Tasks that the expression started here have not run a step yet: they never will.
        tasks.cancel_new(value)
        raise
    return await awaitable


async def execute_on_this_loop(code: CodeType, namespace: dict[str, Any]) -> None:
    """Run cell code that has no top-level ``await`` inside a fresh loop's coroutine.

    So that the cell's plain ``asyncio`` calls (``create_task``, ``get_running_loop``)
    find the fresh loop running in their thread.
    """
    __tracebackhide__ = True
    exec(code, namespace)


def run_cell_code(code: CodeType, namespace: dict[str, Any]) -> None:
    """Run cell code in the calling thread (a loop-free worker of ``run_in_thread``)."""
    __tracebackhide__ = True
    exec(code, namespace)


def evaluate_expression(
    code: CodeType, namespace: dict[str, Any], caller: str, instead: str
) -> Any:
    """Evaluate an expression in the calling thread (a loop-free worker); return its value.

    A coroutine cannot run in a thread by itself: it is closed (no "never awaited"
    warning) and refused with :class:`ExpressionRejected`, whose message ends with
    ``instead``, the way to write it.
    """
    __tracebackhide__ = True
    value = eval(code, namespace)
    if inspect.iscoroutine(value):
        value.close()
        raise ExpressionRejected(
            f"{caller} runs sync code on a worker thread, and the expression gave a "
            f"coroutine, which does not run by itself. {instead}"
        )
    return value


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


def await_on_reentrant_loop(
    future: asyncio.Future[Any], timeout: float | None, grace: float
) -> Any:
    """Wait for ``future`` by running its loop, the re-entrant loop of this very thread.

    Only for a loop made re-entrant by a nest library (nest mode), running in the
    calling thread: the nested run happens on the same thread and the same loop, so the
    loop's other tasks advance too. On timeout or Ctrl-C the future is cancelled and
    the loop runs up to ``grace`` more seconds for its ``finally`` blocks; then
    ``TimeoutError`` is raised or ``KeyboardInterrupt`` re-raised (the core's one wait,
    :func:`~asyncbridge_ext.core.waiting.wait_bounded`).
    """
    __tracebackhide__ = True
    loop = future.get_loop()

    def run_loop_until(deadline: float | None) -> bool:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        loop.run_until_complete(asyncio.wait({future}, timeout=left))
        return future.done()

    wait_bounded(
        run_loop_until,
        timeout,
        grace,
        lambda reason: future.cancel(),
        lambda: not future.done(),
        subject="the future",
        where="on the re-entrant loop",
    )
    return future.result()


def foreign_future_message(
    what: str,
    loop: asyncio.AbstractEventLoop,
    caller_loop: asyncio.AbstractEventLoop | None,
    source: str,
    cancelled: int,
) -> str:
    """The refusal of ``what``, a future bound to ``loop`` (not the fresh one), with the fix."""
    if loop is caller_loop:
        message = (
            f"%run_async got {what}, which belongs to the event loop running this cell, "
            f"not to the fresh loop %run_async evaluates EXPR on; a future can only be "
            f"awaited on its own loop. Await it in a normal cell instead (`await "
            f"{source}`), or make this loop re-entrant so %run_async can wait for it "
            f'here: `%config AsyncBridge.nested_run = "nest"`.'
        )
    else:
        message = (
            f"%run_async got {what}, which belongs to event loop {loop!r}, "
            f"not to the fresh loop %run_async evaluates EXPR on; a future can only be "
            f"awaited on its own loop. Pass the coroutine that produces it instead, e.g. "
            f"`%run_async fetch()`; futures that EXPR itself makes (asyncio.gather, "
            f"create_task) are fine."
        )
    if cancelled:
        message += (
            f" The {cancelled} task(s) that EXPR scheduled on this cell's loop were "
            f"cancelled before they could run."
        )
    return message
