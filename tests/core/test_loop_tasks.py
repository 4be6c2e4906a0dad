"""Finding the tasks of a fresh loop (and of a LoopThread) at cleanup, however they were made.

Before Python 3.14 a fresh loop's tasks are recorded by a task factory, and
``asyncio.all_tasks`` (which walks every task in the process there) is used only when
the record cannot vouch for itself. Every way of making a task on the loop must still
end with the task cancelled and its ``finally`` run before the call returns. No timing
here: the cost lives in ``make bench``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

import asyncbridge_ext.core._closing as closing
from asyncbridge_ext import LoopThread, run_coroutine_in_new_loop
from asyncbridge_ext.core._loop_tasks import ALL_TASKS_WALKS_THE_PROCESS
from support.blocked import Blocked


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the tidy-ups that walked ``asyncio.all_tasks``."""
    counted: list[int] = []
    walk = closing.unfinished_tasks

    def counting(loop: asyncio.AbstractEventLoop, this: asyncio.Task[Any]) -> list[Any]:
        counted.append(1)
        return walk(loop, this)

    monkeypatch.setattr(closing, "unfinished_tasks", counting)
    yield counted


def _direct_task(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        asyncio.Task(blocked.wait_forever(), loop=asyncio.get_running_loop())
        await asyncio.sleep(0)  # let it start waiting
        return 1

    return body()


def _direct_task_never_started(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        asyncio.Task(blocked.wait_forever(), loop=asyncio.get_running_loop())
        return 1

    return body()


def _create_task(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        asyncio.get_running_loop().create_task(blocked.wait_forever())
        await asyncio.sleep(0)
        return 1

    return body()


def _ensure_future(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        asyncio.ensure_future(blocked.wait_forever())  # noqa: RUF006 - left behind on purpose
        await asyncio.sleep(0)
        return 1

    return body()


def _library_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
    """A library's own task factory, which never calls the one it replaced."""
    return asyncio.Task(coro, loop=loop, **kwargs)


def _factory_replaced(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(_library_factory)
        loop.create_task(blocked.wait_forever())  # noqa: RUF006 - left behind on purpose
        await asyncio.sleep(0)
        return 1

    return body()


def _factory_replaced_then_put_back(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        loop = asyncio.get_running_loop()
        ours = loop.get_task_factory()
        loop.set_task_factory(_library_factory)
        loop.create_task(blocked.wait_forever())  # noqa: RUF006 - left behind on purpose
        loop.set_task_factory(ours)
        await asyncio.sleep(0)
        return 1

    return body()


def _factory_removed(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(None)
        loop.create_task(blocked.wait_forever())  # noqa: RUF006 - left behind on purpose
        await asyncio.sleep(0)
        return 1

    return body()


def _eager_factory(blocked: Blocked) -> Coroutine[Any, Any, int]:
    async def body() -> int:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        loop.create_task(blocked.wait_forever())  # noqa: RUF006 - left behind on purpose
        return 1

    return body()


WAYS: dict[str, Callable[[Blocked], Coroutine[Any, Any, int]]] = {
    "asyncio.Task(coro, loop=loop)": _direct_task,
    "asyncio.Task(coro, loop=loop), never started": _direct_task_never_started,
    "loop.create_task": _create_task,
    "asyncio.ensure_future": _ensure_future,
    "loop.create_task after a library replaced the factory": _factory_replaced,
    "a library's factory, then ours put back": _factory_replaced_then_put_back,
    "loop.create_task with no factory": _factory_removed,
}
if sys.version_info >= (3, 12):
    WAYS["asyncio.eager_task_factory"] = _eager_factory


@pytest.mark.parametrize("way", list(WAYS))
def test_a_task_left_on_the_fresh_loop_is_cancelled_before_the_call_returns(way: str) -> None:
    blocked = Blocked()
    assert run_coroutine_in_new_loop(WAYS[way](blocked), timeout=30) == 1
    assert blocked.finally_ran.is_set(), f"a task made by {way} was not cancelled"


@pytest.mark.parametrize("way", list(WAYS))
def test_a_task_left_behind_a_timeout_is_cancelled_too(way: str) -> None:
    blocked = Blocked()

    async def leaves_a_task_then_hangs() -> None:
        await WAYS[way](blocked)
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        run_coroutine_in_new_loop(leaves_a_task_then_hangs(), timeout=0.5)
    assert blocked.finally_ran.is_set(), f"a task made by {way} was not cancelled"


def test_a_task_made_by_a_leftover_while_it_is_cancelled_is_cancelled_too() -> None:
    blocked = Blocked()

    async def spawns_when_cancelled() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            asyncio.Task(blocked.wait_forever(), loop=asyncio.get_running_loop())

    async def body() -> int:
        asyncio.get_running_loop().create_task(spawns_when_cancelled())
        await asyncio.sleep(0)
        return 1

    assert run_coroutine_in_new_loop(body(), timeout=30) == 1
    assert blocked.finally_ran.is_set()


def test_a_plain_call_does_not_walk_every_task_in_the_process(walks: list[int]) -> None:
    async def work(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert [run_coroutine_in_new_loop(work(x)) for x in range(5)] == [1, 2, 3, 4, 5]
    # From 3.14 on, all_tasks looks only at this thread's tasks, and is used as is.
    assert len(walks) == (0 if ALL_TASKS_WALKS_THE_PROCESS else 5)


def test_a_plain_call_raising_does_not_walk_either(walks: list[int]) -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("the user's own")

    with pytest.raises(ValueError, match="the user's own"):
        run_coroutine_in_new_loop(fails())
    assert len(walks) == (0 if ALL_TASKS_WALKS_THE_PROCESS else 1)


def test_a_direct_task_makes_the_tidy_up_walk(walks: list[int]) -> None:
    blocked = Blocked()
    assert run_coroutine_in_new_loop(_direct_task(blocked), timeout=30) == 1
    assert blocked.finally_ran.is_set()
    assert len(walks) >= 1


def test_a_fresh_loop_has_a_recording_factory_only_where_all_tasks_walks_the_process() -> None:
    async def factory_seen() -> object:
        return asyncio.get_running_loop().get_task_factory()

    factory = run_coroutine_in_new_loop(factory_seen())
    if ALL_TASKS_WALKS_THE_PROCESS:
        assert callable(factory)  # ours, recording
    else:
        assert factory is None  # untouched where all_tasks is cheap


@pytest.mark.parametrize("way", list(WAYS))
def test_loop_thread_close_cancels_a_task_made_any_way(way: str) -> None:
    blocked = Blocked()
    with LoopThread() as runner:
        assert runner.run(WAYS[way](blocked), timeout=30) == 1
        assert not blocked.finally_ran.is_set()
    assert blocked.finally_ran.is_set(), f"a task made by {way} survived LoopThread.close()"


def test_a_task_is_found_after_the_coroutine_replaced_the_async_generator_hooks() -> None:
    # Dropping the loop's hooks drops two references to the loop: exactly what a task
    # waiting on a future of its own adds, so the count alone would balance.
    finally_ran = threading.Event()

    async def wait_on(future: asyncio.Future[None]) -> None:
        try:
            await future
        finally:
            finally_ran.set()

    async def body() -> int:
        loop = asyncio.get_running_loop()
        sys.set_asyncgen_hooks(firstiter=None, finalizer=None)
        asyncio.Task(wait_on(loop.create_future()), loop=loop)
        await asyncio.sleep(0)
        del loop
        return 1

    assert run_coroutine_in_new_loop(body(), timeout=30) == 1
    assert finally_ran.is_set()
