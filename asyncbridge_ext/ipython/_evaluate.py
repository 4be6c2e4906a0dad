"""Evaluate a magic's code where it runs: on the loop that awaits it, or on a loop-free thread.

Used by the magics; no IPython here. The expression's code is evaluated by
:func:`evaluate_then_await` *inside* the coroutine that a fresh loop runs, so every
future it makes (``asyncio.gather``, ``create_task``, ``shield``, ``run_in_executor``)
belongs to the loop that awaits it. A value that cannot be awaited there is refused
with :class:`ExpressionRejected`; a future bound to the caller's own loop can then be
served by :func:`await_on_reentrant_loop` when that loop is re-entrant (nest mode).
:func:`run_async_expression` makes that choice for ``%run_async``;
:class:`~asyncbridge_ext.ipython._new_tasks.LoopTasks` makes sure a refused expression
leaves nothing scheduled behind.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from types import CodeType
from typing import Any

from ..core.in_thread import run_in_thread
from ..core.nest import NestAsyncio
from ..core.new_loop import run_coroutine_in_new_loop
from ..core.waiting import DEFAULT_CANCEL_GRACE, as_coroutine, wait_bounded
from ._new_tasks import LoopTasks

__all__ = [
    "ExpressionRejected",
    "await_on_reentrant_loop",
    "evaluate_expression",
    "evaluate_in_thread",
    "evaluate_then_await",
    "execute_on_this_loop",
    "foreign_future_message",
    "run_async_expression",
    "run_cell_code",
    "run_cell_in_thread",
    "run_cell_on_fresh_loop",
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


def run_async_expression(
    code: CodeType, namespace: dict[str, Any], source: str, timeout: float | None
) -> Any:
    """``%run_async``'s routing: await the expression ``code`` (typed as ``source``).

    Called on the cell's thread. The expression is evaluated and awaited on a fresh
    loop in a worker thread (:func:`~asyncbridge_ext.run_coroutine_in_new_loop`) while
    this thread waits; on timeout or Ctrl-C it is cancelled there and its ``finally``
    blocks run first. If its value is a future of this thread's own loop and that loop
    is re-entrant (nest mode), the future is awaited on that loop instead, on this
    thread (:func:`await_on_reentrant_loop`). Any other value that cannot be awaited is
    refused with :class:`ExpressionRejected`, whose message says what to write instead.
    Whatever the expression scheduled on this thread's loop is cancelled before that
    loop runs again, unless the future it gave is served.
    """
    __tracebackhide__ = True
    caller_tasks = LoopTasks()  # before EXPR can schedule anything on this cell's loop
    coro = evaluate_then_await(code, namespace, "%run_async", _run_async_usage)
    try:
        try:
            return run_coroutine_in_new_loop(coro, timeout=timeout)
        finally:
            caller_tasks.stop()  # before this loop runs again, served or not
    except ExpressionRejected as exc:
        rejected = exc
    except BaseException:
        caller_tasks.cancel_new(None)
        raise
    # Outside the except block, so a served future's own error is not chained to ours.
    future = rejected.future
    if future is None:
        caller_tasks.cancel_new(None)
        raise ExpressionRejected(str(rejected))
    if future.get_loop() is caller_tasks.loop and NestAsyncio.is_applied:
        return await_on_reentrant_loop(future, timeout, DEFAULT_CANCEL_GRACE)
    what = f"{type(future).__name__} {future!r}"  # before cancel_new adds a callback
    cancelled = caller_tasks.cancel_new(future)
    raise ExpressionRejected(
        foreign_future_message(what, future.get_loop(), caller_tasks.loop, source, cancelled)
    )


def run_cell_on_fresh_loop(code: CodeType, namespace: dict[str, Any], timeout: float | None) -> Any:
    """``%%in_new_loop``: run cell code on a fresh loop in a worker thread; the caller waits.

    Code with a top-level ``await`` is a coroutine already; other code is run inside one
    (:func:`execute_on_this_loop`). Timeout and Ctrl-C: as
    :func:`~asyncbridge_ext.run_coroutine_in_new_loop` (cancelled, ``finally`` blocks run).
    """
    __tracebackhide__ = True
    if inspect.CO_COROUTINE & code.co_flags:
        awaitable = eval(code, namespace)
    else:
        awaitable = execute_on_this_loop(code, namespace)
    return run_coroutine_in_new_loop(awaitable, timeout=timeout)


def run_cell_in_thread(code: CodeType, namespace: dict[str, Any], timeout: float | None) -> None:
    """``%%in_thread``: run cell code on a loop-free worker thread; the caller waits.

    Timeout and Ctrl-C: as :func:`~asyncbridge_ext.run_in_thread`.
    """
    __tracebackhide__ = True
    run_in_thread(run_cell_code, code, namespace, timeout=timeout)


def evaluate_in_thread(
    code: CodeType, namespace: dict[str, Any], source: str, timeout: float | None
) -> Any:
    """``%in_thread EXPR``: EXPR's value, evaluated on a loop-free worker thread.

    The caller waits; timeout and Ctrl-C: as :func:`~asyncbridge_ext.run_in_thread`. A
    coroutine value is refused with :class:`ExpressionRejected` (await it with
    ``%run_async`` instead).
    """
    __tracebackhide__ = True
    instead = f"Await it with `%run_async {source}` instead."
    return run_in_thread(
        evaluate_expression, code, namespace, "%in_thread", instead, timeout=timeout
    )


def _run_async_usage(argument: str) -> str:
    return f"%run_async {argument}"
