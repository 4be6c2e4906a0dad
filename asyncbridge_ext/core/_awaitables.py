"""Check what the caller handed us and turn it into a coroutine we can schedule.

Shared by :func:`~asyncbridge_ext.run_coroutine_in_new_loop` and
:class:`~asyncbridge_ext.LoopThread`. Runs on the caller's thread, before anything
is scheduled, so a rejected input costs nothing and leaks nothing: a rejected
coroutine object is closed, so Python prints no "was never awaited" warning.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .names import name_of

T = TypeVar("T")


def check_timeout(timeout: float | None, *, name: str = "timeout") -> float | None:
    """Return ``timeout`` as a float (``None`` or ``inf`` mean no limit) or raise."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds or None, got {type(timeout).__name__} "
            f"{timeout!r}; pass e.g. {name}=2.5"
        )
    if math.isnan(timeout) or timeout <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {timeout!r}")
    return None if math.isinf(timeout) else float(timeout)


def check_grace(grace: float) -> float:
    """Return the cancellation grace period in seconds, or raise."""
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or math.isnan(grace):
        raise TypeError(f"cancel_grace must be a number of seconds, got {grace!r}")
    if not 0 <= grace <= 60:
        raise ValueError(f"cancel_grace must be between 0 and 60 seconds, got {grace!r}")
    return float(grace)


def as_coroutine(
    awaitable: Awaitable[T],
    *,
    caller: str,
    loop: asyncio.AbstractEventLoop | None = None,
    usage: Callable[[str], str] | None = None,
) -> Coroutine[Any, Any, T]:
    """Return a coroutine that awaits ``awaitable``, or raise a clear ``TypeError``.

    ``caller`` names the API in messages (``"run_coroutine_in_new_loop"``); ``usage``
    spells a correct call of it with a given argument, for the "write this instead"
    part (default: ``caller(arg)``; the ``%run_async`` magic passes its own syntax).
    ``loop`` is the loop the coroutine will run on when that loop already exists
    (a :class:`LoopThread`); futures bound to it are accepted, futures bound to any
    other loop are refused with ``ValueError``, since awaiting them there cannot work.
    """
    if inspect.iscoroutine(awaitable):
        return awaitable
    call = usage or (lambda argument: f"{caller}({argument})")
    name = f"{caller}()" if usage is None else caller
    if asyncio.isfuture(awaitable):
        future_loop = awaitable.get_loop()
        if loop is not None and future_loop is loop:
            return _await_it(awaitable)
        raise ValueError(
            f"{name} got {type(awaitable).__name__} {awaitable!r}, which belongs to "
            f"event loop {future_loop!r}; a future can only be awaited on its own loop. "
            f"Pass the coroutine that produces the result instead, e.g. {call('fetch()')} "
            f"rather than {call('asyncio.ensure_future(fetch())')}."
        )
    if inspect.iscoroutinefunction(awaitable) or inspect.isasyncgenfunction(awaitable):
        function = name_of(awaitable)
        raise TypeError(
            f"{name} got the coroutine function {function}, not a coroutine. "
            f"Call it first: {call(function + '(...)')} rather than {call(function)}."
        )
    if inspect.isasyncgen(awaitable):
        raise TypeError(
            f"{name} got an async generator ({name_of(awaitable)}), which cannot be "
            f"awaited. Wrap it in a coroutine, e.g. "
            f"`async def collect(): return [x async for x in gen]`, and pass "
            f"{call('collect()')}."
        )
    if inspect.isawaitable(awaitable):
        return _await_it(awaitable)
    raise TypeError(
        f"{name} expects a coroutine or another awaitable, got "
        f"{type(awaitable).__name__} {awaitable!r}. Pass a coroutine such as "
        f"{call('fetch()')} where fetch is defined with `async def`."
    )


async def _await_it(awaitable: Awaitable[T]) -> T:
    __tracebackhide__ = True
    return await awaitable


def close_quietly(awaitable: object) -> None:
    """Close a coroutine we refused, so Python does not warn it was never awaited."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()
