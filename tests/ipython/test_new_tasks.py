"""LoopTasks (behind %run_async): the tasks an expression evaluated elsewhere scheduled on the
caller's loop, found and cancelled when the expression is refused or times out.

Plain asyncio and threads, no kernel: the kernel-side behaviour is in test_run_async.py.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from asyncbridge_ext import run_coroutine_in_new_loop
from asyncbridge_ext.ipython._new_tasks import LoopTasks
from support.blocked import Blocked


def _tagging_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
    task = asyncio.Task(coro, loop=loop, **kwargs)
    task.tagged = True  # type: ignore[attr-defined]
    return task


@pytest.mark.parametrize("own_factory", [None, _tagging_factory])
def test_loop_tasks_cancels_only_what_was_scheduled_since_and_restores_the_factory(
    own_factory: Any,
) -> None:
    async def cell() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(own_factory)
        earlier = asyncio.ensure_future(asyncio.sleep(0, result="earlier"))
        guard = LoopTasks()
        made: list[asyncio.Task[Any]] = []
        # As %run_async's expression does: scheduled from another thread while this one waits.
        worker = threading.Thread(target=lambda: made.append(loop.create_task(asyncio.sleep(5))))
        worker.start()
        worker.join(10)
        assert guard.cancel_new(None) == 1
        assert loop.get_task_factory() is own_factory
        assert made[0].cancelled() or made[0].cancelling()  # type: ignore[attr-defined]
        assert getattr(made[0], "tagged", False) == (own_factory is not None)
        assert await earlier == "earlier"
        with pytest.raises(asyncio.CancelledError):
            await made[0]

    asyncio.run(cell())


def test_loop_tasks_stop_puts_the_factory_back_when_nothing_was_refused() -> None:
    async def cell() -> None:
        loop = asyncio.get_running_loop()
        guard = LoopTasks()
        guard.stop()
        assert loop.get_task_factory() is None
        task = loop.create_task(asyncio.sleep(0, result=1))
        assert guard.cancel_new(None) == 0
        assert await task == 1

    asyncio.run(cell())


def test_loop_tasks_on_a_fresh_loop_finds_a_task_built_directly() -> None:
    blocked = Blocked()

    async def evaluate() -> int:
        guard = LoopTasks(fresh=True)
        task = asyncio.Task(blocked.wait_forever(), loop=asyncio.get_running_loop())
        assert guard.cancel_new(None) == 1
        assert task.cancelled() or task.cancelling()  # type: ignore[attr-defined]
        return 1

    assert run_coroutine_in_new_loop(evaluate(), timeout=30) == 1
    assert not blocked.finally_ran.is_set()  # cancelled before its first step
