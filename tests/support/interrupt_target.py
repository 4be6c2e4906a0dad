"""Run by test_interrupt.py in a subprocess: block on a coroutine until SIGINT arrives.

argv: API (new_loop | loop_thread), BEHAVIOUR (cooperative | stubborn), MARKER_PATH.
Prints "started" once the coroutine is inside its try block; after the interrupt prints
"caught KeyboardInterrupt" and whether the coroutine's finally block had run by then.
"""

from __future__ import annotations

import asyncio
import pathlib
import signal
import sys
import time

from asyncbridge_ext import LoopThread, run_coroutine_in_new_loop

# Started from a background job, SIGINT may arrive ignored: the test sends a real one.
signal.signal(signal.SIGINT, signal.default_int_handler)


async def waits_forever(marker: pathlib.Path, stubborn: bool) -> None:
    try:
        print("started", flush=True)
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if not stubborn:
                    raise
    finally:
        marker.write_text("finally ran")


def main() -> None:
    api, behaviour, marker_path = sys.argv[1:4]
    marker = pathlib.Path(marker_path)
    coro = waits_forever(marker, stubborn=behaviour == "stubborn")
    started = time.monotonic()
    runner = LoopThread(cancel_grace=0.5) if api == "loop_thread" else None
    try:
        if runner is not None:
            runner.run(coro)
        else:
            run_coroutine_in_new_loop(coro, cancel_grace=0.5)
    except KeyboardInterrupt:
        print("caught KeyboardInterrupt", flush=True)
        print(f"finally ran before the raise: {marker.exists()}", flush=True)
        print(f"seconds: {time.monotonic() - started:.1f}", flush=True)
    if runner is not None and behaviour == "cooperative":
        runner.close()
        print(f"closed: {runner.closed}", flush=True)


if __name__ == "__main__":
    main()
