"""run_in_thread from a notebook cell: output in the cell; Interrupt kernel stops the work."""

from __future__ import annotations

import pytest

from support.kernel_harness import start_kernel

pytestmark = pytest.mark.kernel

SETUP = (
    "%load_ext asyncbridge_ext\n"
    "import asyncio, threading\n"
    "from asyncbridge_ext import run_in_thread\n"
    "state = {'count': 0}\n"
    "where = threading.local()\n"
)

# Both count while they run (the marker comes after the first count), so a count that
# stops moving proves the work stopped.
WORK = {
    "busy_loop": (
        "def work():\n"
        "    where.mark = 'kept'\n"
        "    try:  # the marker inside: the interrupt may land right after it\n"
        "        state['count'] += 1\n"
        "        print('work started', flush=True)\n"
        "        while True:\n"
        "            state['count'] += 1\n"
        "    finally:\n"
        "        state['finally ran'] = True\n"
        "run_in_thread(work)\n"
    ),
    "asyncio_run": (
        "async def beat():\n"
        "    while True:\n"
        "        state['count'] += 1\n"
        "        await asyncio.sleep(0)\n"
        "async def slow():\n"
        "    heartbeat = asyncio.ensure_future(beat())\n"
        "    try:\n"
        "        while not state['count']:\n"
        "            await asyncio.sleep(0)\n"
        "        print('work started', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "    finally:\n"
        "        await asyncio.sleep(0)\n"
        "        state['finally ran'] = True\n"
        "def work():\n"
        "    where.mark = 'kept'\n"
        "    asyncio.run(slow())\n"
        "run_in_thread(work)\n"
    ),
}


@pytest.mark.parametrize("work", sorted(WORK))
def test_interrupt_kernel_stops_the_work_and_the_thread_is_reused(work: str) -> None:
    with start_kernel() as kernel:
        kernel.ok(SETUP)
        cell = kernel.submit(WORK[work])
        kernel.interrupt_once_running(cell, "work started")  # printed by the worker, in this cell
        assert kernel.ok("state['finally ran']").result == "True"
        # The next call runs on the same worker (its thread-local state is still there), so
        # the work ended; and the count did not move while this cell waited for that call
        # (the wait lets any other thread run).
        cell = kernel.ok(
            "counted = state['count']\n"
            "mark = run_in_thread(lambda: where.mark)\n"
            "counted > 0, mark, state['count'] == counted"
        )
        assert cell.result == "(True, 'kept', True)"
