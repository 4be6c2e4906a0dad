"""%run_async evaluates EXPR on the fresh loop: futures it makes just work, in both modes.

One kernel per mode, shared by the module; a fresh kernel for the interrupt.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kernel_harness import GATHER_BINDS_TO_RUNNING_LOOP, Kernel, start_kernel, usage_error

pytestmark = pytest.mark.kernel

SETUP = """
import asyncio, gc, threading
%load_ext asyncbridge_ext
from asyncbridge_ext.core.activity import ACTIVITY
MAIN = threading.get_ident()
ran = []

async def echo(value, delay=0.0):
    await asyncio.sleep(delay)
    return value

async def where():
    return threading.get_ident(), asyncio.get_running_loop()

async def side(name):
    ran.append(name)

async def settle():
    # Returns once every callback this loop had scheduled before the call has run: the
    # loop runs its callbacks in order, so a task made earlier has taken its first step.
    loop = asyncio.get_running_loop()
    reached = loop.create_future()
    loop.call_soon(reached.set_result, None)
    await reached
"""


@pytest.fixture(scope="module", params=["nest", "thread"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    with start_kernel() as kernel:
        kernel.ok(f"%config AsyncBridge.nested_run = {request.param!r}\n{SETUP}")
        yield kernel


@pytest.fixture
def mode(kernel: Kernel) -> str:
    result = kernel.ok("%config AsyncBridge.nested_run").result
    assert result is not None
    return result.strip("'")


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("asyncio.gather(echo(1), echo(2, delay=0.01))", "[1, 2]"),
        ("asyncio.gather(*[echo(u) for u in 'abc'])", "['a', 'b', 'c']"),
        ("asyncio.shield(echo(3))", "3"),
        ("asyncio.ensure_future(echo(4))", "4"),
        ("asyncio.create_task(echo(5))", "5"),
        ("asyncio.get_running_loop().create_task(echo(6))", "6"),
        ("asyncio.wait_for(asyncio.gather(echo(7), echo(8)), 5)", "[7, 8]"),
        ("asyncio.get_running_loop().run_in_executor(None, pow, 2, 10)", "1024"),
    ],
)
def test_futures_made_by_expr_belong_to_the_fresh_loop(
    kernel: Kernel, expr: str, value: str
) -> None:
    assert kernel.ok(f"%run_async {expr}").result == value


def test_gather_runs_its_children_on_the_fresh_loop(kernel: Kernel) -> None:
    kernel.ok("places = %run_async asyncio.gather(where(), where())")
    cell = kernel.ok(
        "[(ident != MAIN, loop is not asyncio.get_running_loop(), loop.is_closed()) "
        "for ident, loop in places], places[0] == places[1]"
    )
    assert cell.result == "([(True, True, True), (True, True, True)], True)"


def test_assignment_with_timeout_and_a_timeout_that_fires(kernel: Kernel) -> None:
    kernel.ok("results = %run_async --timeout 5 asyncio.gather(*[echo(n) for n in range(3)])")
    assert kernel.ok("results").result == "[0, 1, 2]"
    kernel.ok(
        "cleaned = []\n"
        "async def slow(name):\n"
        "    try:\n"
        "        await asyncio.sleep(30)\n"
        "    finally:\n"
        "        cleaned.append(name)\n"
    )
    cell = kernel.run("late = %run_async --timeout 0.3 asyncio.gather(slow('a'), slow('b'))")
    assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
    assert kernel.ok("sorted(cleaned), 'late' in globals()").result == "(['a', 'b'], False)"


def test_each_call_is_counted(kernel: Kernel) -> None:
    before = kernel.ok("ACTIVITY.counts['magic.run_async']").result
    assert before is not None
    kernel.ok("%run_async echo(1)\n%run_async echo(2)")
    assert kernel.ok("ACTIVITY.counts['magic.run_async']").result == str(int(before) + 2)


def test_dollar_and_braces_reach_python_verbatim(kernel: Kernel) -> None:
    kernel.ok("x = 'EXPANDED'")
    assert kernel.ok("%run_async echo('$x {x}')").result == "'$x {x}'"
    assert kernel.ok("%run_async echo(f'{x}')").result == "'EXPANDED'"


def test_errors_point_at_the_expression(kernel: Kernel) -> None:
    cell = kernel.run("%run_async no_such_name()")
    assert cell.error is not None and cell.error["ename"] == "NameError", cell.describe()
    assert "no_such_name()" in cell.traceback
    assert "evaluate_then_await" not in cell.traceback, cell.traceback
    cell = kernel.run("%run_async asyncio.gather(echo(1), 42)")
    assert cell.error is not None and cell.error["ename"] == "TypeError", cell.describe()


@pytest.mark.parametrize(
    ("expr", "fragments"),
    [
        ("42", ["expects a coroutine or another awaitable", "int 42"]),
        ("echo", ["coroutine function echo", "%run_async echo(...)"]),
        ("(asyncio.ensure_future(side('fresh')), 42)[1]", ["int 42"]),
        ("await echo(1)", ["cannot contain `await`"]),
    ],
)
def test_values_that_cannot_be_awaited_are_clear_and_leave_nothing_behind(
    kernel: Kernel, expr: str, fragments: list[str]
) -> None:
    message = usage_error(kernel, f"%run_async {expr}")
    for fragment in fragments:
        assert fragment in message
    kernel.ok("await settle()")
    assert kernel.ok("ran").result == "[]"


def test_future_of_an_unrelated_loop_is_refused(kernel: Kernel) -> None:
    kernel.ok("other = asyncio.new_event_loop()\nforeign = other.create_future()")
    try:
        message = usage_error(kernel, "%run_async foreign")
        assert "belongs to event loop" in message and "Pass the coroutine" in message
    finally:
        kernel.ok("other.close()")


def test_task_of_the_kernels_loop_is_served_in_nest_mode_else_refused(
    kernel: Kernel, mode: str
) -> None:
    # the task has not run a single step when %run_async gets it
    code = "t = asyncio.ensure_future(echo('from the kernel loop', delay=0.05))\n%run_async t"
    if mode == "nest":
        assert kernel.ok(code).result == "'from the kernel loop'"
        gather = kernel.run("%run_async asyncio.gather(t, echo(2))")
        if GATHER_BINDS_TO_RUNNING_LOOP:  # asyncio's own error, passed through unchanged
            assert gather.error is not None and gather.error["ename"] == "ValueError"
            assert "The future belongs to a different loop" in gather.error["evalue"]
        else:
            assert (gather.status, gather.result) == ("ok", "['from the kernel loop', 2]")
        cell = kernel.run(
            "t = asyncio.ensure_future(echo(1, delay=30))\n%run_async --timeout 0.2 t"
        )
        assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
        assert kernel.ok("t.cancelled()").result == "True"
        return
    message = usage_error(kernel, code)
    assert "belongs to the event loop running this cell" in message
    assert "`await t`" in message and 'nested_run = "nest"' in message
    # the user's own task is left alone: it still runs and can be awaited
    assert kernel.ok("await t").result == "'from the kernel loop'"


def test_interrupting_a_kernel_task_served_in_nest_mode_cancels_it(
    kernel: Kernel, mode: str
) -> None:
    if mode != "nest":
        pytest.skip("only nest mode waits for a task of the kernel's loop")
    # The marker is printed by a callback that runs once the task is suspended in its
    # sleep: the interrupt then lands in the loop, as a user's Ctrl-C does, and never inside
    # the task's own step (where a busy machine could deliver it between the print and the
    # await, and the task would end with the KeyboardInterrupt instead of being cancelled).
    kernel.ok(
        "stopped = []\n"
        "async def held():\n"
        "    try:\n"
        "        asyncio.get_running_loop().call_soon(lambda: print('task started', flush=True))\n"
        "        await asyncio.sleep(60)\n"
        "    finally:\n"
        "        stopped.append('finally ran')\n"
    )
    cell = kernel.submit("held_task = asyncio.ensure_future(held())\n%run_async held_task")
    kernel.interrupt_once_running(cell, "task started")
    # cancelled before the cell ended, not left running on the kernel's loop
    assert kernel.ok("held_task.cancelled(), stopped").result == "(True, ['finally ran'])"


def test_children_a_refused_gather_put_on_the_kernels_loop_never_run(
    kernel: Kernel, mode: str
) -> None:
    if mode == "nest":
        pytest.skip("nest mode serves this gather on the kernel's loop")
    code = "t = asyncio.ensure_future(echo('t'))\n%run_async asyncio.gather(t, side('child'))"
    if GATHER_BINDS_TO_RUNNING_LOOP:  # gather raises before it schedules anything
        cell = kernel.run(code)
        assert cell.error is not None and cell.error["ename"] == "ValueError", cell.describe()
    else:
        message = usage_error(kernel, code)
        assert "The 1 task(s) that EXPR scheduled on this cell's loop were cancelled" in message
    cell = kernel.ok("await settle()\ngc.collect()\nran, await t")
    assert cell.result == "([], 't')"
    assert "never retrieved" not in cell.stderr, cell.stderr


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param("(t, (g := asyncio.gather(t, side('child'))))", id="tuple"),
        pytest.param("id(g := asyncio.gather(t, side('child')))", id="call"),
        pytest.param("(g := KERNEL_LOOP.create_task(side('child')), t)", id="task"),
    ],
)
def test_a_refused_expression_of_any_shape_leaves_no_task_to_run_later(
    kernel: Kernel, shape: str
) -> None:
    """The gather puts side('child')'s task on t's loop, the kernel's (or the expression
    puts one there itself); the value is not awaitable, so %run_async refuses it, and that
    task must never run."""
    kernel.ok("KERNEL_LOOP = asyncio.get_running_loop()")
    code = f"t = asyncio.ensure_future(echo('t'))\n%run_async {shape}"
    if GATHER_BINDS_TO_RUNNING_LOOP and "gather" in shape:
        # 3.14+: gather binds to the loop running the expression and refuses t's future
        # before it schedules anything; still, nothing may run later.
        cell = kernel.run(code)
        assert cell.error is not None and cell.error["ename"] == "ValueError", cell.describe()
        cell = kernel.ok("await settle()\ngc.collect()\nran, await t")
        assert cell.result == "([], 't')", cell.describe()
        return
    message = usage_error(kernel, code)
    assert "expects a coroutine or another awaitable" in message
    # g was made, on this cell's loop: the child task was really scheduled here
    assert kernel.ok("g.get_loop() is asyncio.get_running_loop()").result == "True"
    cell = kernel.ok("await settle()\ngc.collect()\nran, await t, g.done()")
    assert cell.result == "([], 't', True)", cell.describe()
    kernel.ok("g.exception() if not g.cancelled() else None\ndel g")


def test_a_timeout_cancels_what_expr_scheduled_on_the_kernels_loop(kernel: Kernel) -> None:
    """EXPR is accepted (its awaitable runs on the fresh loop) but also scheduled a task on
    the cell's loop; when the call times out, that task is cancelled before it runs."""
    kernel.ok("KERNEL_LOOP = asyncio.get_running_loop()")
    cell = kernel.run(
        "%run_async --timeout 0.2 (late := KERNEL_LOOP.create_task(side('late')), "
        "asyncio.sleep(30))[1]"
    )
    assert cell.error is not None and cell.error["ename"] == "TimeoutError", cell.describe()
    cell = kernel.ok("await settle()\nran, late.cancelled()")
    assert cell.result == "([], True)", cell.describe()


def test_interrupt_during_gather_cancels_both_children_and_their_finally_runs() -> None:
    with start_kernel() as kernel:
        kernel.ok(
            "import asyncio\n%load_ext asyncbridge_ext\n"
            "state = []\n"
            "async def slow(name):\n"
            "    try:\n"
            "        print('started', name, flush=True)\n"
            "        await asyncio.sleep(60)\n"
            "    except asyncio.CancelledError:\n"
            "        state.append(name + ' cancelled')\n"
            "        raise\n"
            "    finally:\n"
            "        state.append(name + ' finally')\n"
        )
        cell = kernel.submit("%run_async asyncio.gather(slow('a'), slow('b'))")
        kernel.wait_for_stdout(cell, "started a")
        kernel.interrupt_once_running(cell, "started b")
        assert kernel.ok("sorted(state)").result == (
            "['a cancelled', 'a finally', 'b cancelled', 'b finally']"
        )
        assert kernel.ok("%run_async asyncio.gather(asyncio.sleep(0, 'next'))").result == (
            "['next']"
        )
