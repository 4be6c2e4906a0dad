"""Run a check in a child made by os.fork and wait for it, bounded (for fork-safety tests)."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Callable


def exit_code_in_forked_child(check: Callable[[], bool], wait: float) -> int:
    """Fork; the child exits 0 if ``check()`` is true, 1 if false, 2 if it raised.

    The parent waits at most ``wait`` seconds (then kills the child and returns -9), so a
    child that hangs fails the test instead of hanging it. The child never returns into
    pytest.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:
        try:
            code = 0 if check() else 1
        except BaseException:
            code = 2
        os._exit(code)
    deadline = time.monotonic() + wait
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -signal.SIGKILL
        threading.Event().wait(0.02)
