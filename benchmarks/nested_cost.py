"""A nested ``asyncio.run`` in a kernel (thread mode) against the same call in a plain script.

The target (issue 9): inside a Jupyter kernel in thread mode, a nested ``asyncio.run`` costs
at most 1.15x what the same ``asyncio.run`` costs in the main thread of a plain Python
script. Both sides are timed with ``time.perf_counter`` inside their own process, in
interleaved rounds (kernel, script, kernel, script, ...), so load changes on a shared
machine hit both alike; the ratio is of the two medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

from kernel_bench import Kernel

# The same timing function, defined in the kernel and in the script.
TIMER = r"""
import asyncio, gc, json, time
async def _nested_work():
    await asyncio.sleep(0)
    return 1
def _nested_run_us(calls):
    gc.collect()
    start = time.perf_counter()
    for _ in range(calls):
        asyncio.run(_nested_work())
    return (time.perf_counter() - start) / calls * 1e6
"""

SCRIPT = (
    TIMER
    + r"""
import sys
for line in sys.stdin:
    print(json.dumps(_nested_run_us(int(line))), flush=True)
"""
)


def measure(rounds: int = 9, calls: int = 300) -> dict[str, Any]:
    """Interleaved rounds of ``calls`` nested runs: kernel (thread mode) and script."""
    kernel = Kernel()
    script = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        kernel.run(
            '%config AsyncBridge.nested_run = "thread"\n%load_ext asyncbridge_ext\n'
            + TIMER
            + "\nfrom asyncbridge_ext.nested.redirect import NestedRunRedirect\n"
            "print(json.dumps(NestedRunRedirect.installed))"
        )
        kernel_us, script_us = [], []
        assert script.stdin is not None and script.stdout is not None
        for index in range(rounds + 1):  # round 0 warms both up and is dropped
            k = kernel.run(f"print(json.dumps(_nested_run_us({calls})))")
            script.stdin.write(f"{calls}\n")
            script.stdin.flush()
            s = json.loads(script.stdout.readline())
            if index:
                kernel_us.append(k)
                script_us.append(s)
        served = kernel.run(
            "from asyncbridge_ext.core.activity import ACTIVITY\n"
            "print(json.dumps(ACTIVITY.counts['nested_run.same_thread']))"
        )
        return {
            "kernel_us": kernel_us,
            "script_us": script_us,
            "ratio": statistics.median(kernel_us) / statistics.median(script_us),
            "served_same_thread": served,
            "calls": calls,
        }
    finally:
        if script.stdin is not None:
            script.stdin.close()
        script.wait(timeout=30)
        kernel.close()


if __name__ == "__main__":
    print(json.dumps(measure(rounds=3, calls=200), indent=1))
