"""Ctrl-C and --timeout in %%in_thread stop the call, not the library (real kernels, every mode).

The library (tests/support/library_session.py) keeps its loop in the worker's thread-local state
with a background connection task, in two shapes: each call runs the loop until the call
is done, or (as Playwright's sync API) until the connection ends, stopping the loop when
the call is done. Interrupting one of its calls must leave the next %%in_thread cell
able to use the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.kernel_harness import Kernel, start_kernel

pytestmark = pytest.mark.kernel

LIBRARY = Path(__file__).parents[1] / "support" / "library_session.py"


@pytest.fixture(params=["nest", "thread", "auto", "off"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    with start_kernel(kernel_config=f"c.AsyncBridge.nested_run = {request.param!r}") as kernel:
        kernel.ok("%load_ext asyncbridge_ext")
        kernel.ok(f"%%in_thread\nexec(open({str(LIBRARY)!r}).read())")
        yield kernel


@pytest.mark.parametrize("shape", ["Session", "DispatcherSession"])
def test_an_interrupted_library_call_leaves_the_session_usable(kernel: Kernel, shape: str) -> None:
    assert kernel.ok(f"%%in_thread\nsession = {shape}()\nsession.ping()").result == "'pong'"
    waiting = kernel.submit("%%in_thread\nsession.wait(60)", stop_on_error=False)
    queued = [
        kernel.submit(code, stop_on_error=False)
        for code in (
            "%in_thread session.ping()",
            "print(session.waits_cleaned_up, session.connection.done())",
            "%%in_thread --timeout 0.5\nsession.wait(60)",
            "%in_thread session.ping()",
            "print(session.waits_cleaned_up, session.connection.done())",
        )
    ]
    kernel.interrupt_once_running(waiting, "waiting")
    kernel.wait(queued, timeout=60)
    ping, state, timed_out, ping_again, state_again = queued
    assert ping.result == "'pong'", ping.describe()
    assert state.stdout == "1 False\n", state.describe()  # finally ran; connection alive
    assert timed_out.error is not None and timed_out.error["ename"] == "TimeoutError", (
        timed_out.describe()
    )
    assert ping_again.result == "'pong'", ping_again.describe()
    assert state_again.stdout == "2 False\n", state_again.describe()
