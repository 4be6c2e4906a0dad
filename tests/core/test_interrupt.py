"""A real SIGINT while the caller waits: cancel, let `finally` run, re-raise."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys

import pytest

TARGET = pathlib.Path(__file__).parents[1] / "support" / "interrupt_target.py"


def interrupt_after_start(api: str, behaviour: str, marker: pathlib.Path) -> str:
    proc = subprocess.Popen(
        [sys.executable, str(TARGET), api, behaviour, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the coroutine is running
        assert first.strip() == "started", first
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, rest
    return rest


@pytest.mark.parametrize("api", ["new_loop", "loop_thread"])
def test_sigint_cancels_the_coroutine_and_finally_runs_before_the_raise(
    api: str, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "marker"
    output = interrupt_after_start(api, "cooperative", marker)
    assert "caught KeyboardInterrupt" in output
    assert "finally ran before the raise: True" in output
    assert marker.read_text() == "finally ran"


@pytest.mark.parametrize("api", ["new_loop", "loop_thread"])
def test_sigint_on_a_coroutine_that_ignores_cancellation_does_not_hang(
    api: str, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "marker"
    output = interrupt_after_start(api, "stubborn", marker)
    assert "caught KeyboardInterrupt" in output
    assert "finally ran before the raise: False" in output
    assert "was abandoned" in output  # the logged warning (logging's last resort: stderr)
