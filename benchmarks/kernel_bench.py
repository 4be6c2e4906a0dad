"""Measurements inside real Jupyter kernels (through jupyter_client).

Every figure is timed *inside* the kernel with ``time.perf_counter`` and sent back as
one JSON line on stdout, so messaging between this process and the kernel adds nothing.
Each scenario gets a fresh kernel, started with this interpreter and an empty
``IPYTHONDIR`` (no user config, no auto-loaded extension).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

CELL_TIMEOUT = 300.0

# Defined in the kernel once: the asyncio work whose throughput we compare (tasks/s of
# a gather of tiny coroutines, run as a top-level await on the kernel's own loop).
SETUP = r"""
import asyncio, gc, json, statistics, time
async def _tiny(i):
    await asyncio.sleep(0)
    return i
async def _throughput(tasks=4000, repeats=5):
    rates = []
    for _ in range(repeats):
        gc.collect()  # else a full collection lands in every ~3rd sample and halves it
        start = time.perf_counter()
        await asyncio.gather(*(_tiny(i) for i in range(tasks)))
        rates.append(tasks / (time.perf_counter() - start))
    return statistics.median(rates)
def _cell_overhead(rounds, per_round):
    # Plain cell vs the same body under %%in_new_loop, run through the shell itself.
    ip = get_ipython()
    sources = {
        "plain": "_x = 1 + 1\n",
        "in_new_loop": "%%in_new_loop\n_x = 1 + 1\n",
        "in_thread": "%%in_thread\n_x = 1 + 1\n",
    }
    for source in sources.values():
        if not ip.run_cell(source, store_history=False, silent=True).success:
            raise RuntimeError(f"cell failed: {source!r}")
    samples = {name: [] for name in sources}
    for _ in range(rounds):
        for name, source in sources.items():
            start = time.perf_counter()
            for _ in range(per_round):
                ip.run_cell(source, store_history=False, silent=True)
            samples[name].append((time.perf_counter() - start) / per_round * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}
async def _alternate(pairs):
    # Thread mode can be undone: unload / load in one cell, so each "before" sample sits
    # next to an "after" sample in time (order flipped every pair), whatever the load.
    ip = get_ipython()
    before, after = [], []
    for index in range(pairs):
        for loaded in ((False, True) if index % 2 else (True, False)):
            ip.run_line_magic("load_ext" if loaded else "unload_ext", "asyncbridge_ext")
            (after if loaded else before).append(await _throughput(repeats=5))
    ip.run_line_magic("load_ext", "asyncbridge_ext")
    return before, after
def _cells_growth(points, per_point=80, batch=10):
    # Real cells (history stored, execution count growing): the cost of a plain cell and
    # of an %%in_thread cell after `point` earlier ones, interleaved batches; the fastest
    # batch, since a cost that grew with the cells would show there too, and bursts of
    # load from other processes do not.
    # History is written to its database in bulk, so an fsync per cell does not dominate.
    ip = get_ipython()
    ip.history_manager.db_cache_size = 10**6
    sources = {"plain": "_x = 1 + 1\n", "in_thread": "%%in_thread\n_x = 1 + 1\n"}
    done, costs = 0, {name: {} for name in sources}
    for point in points:
        while done < point:
            ip.run_cell(sources["in_thread"], store_history=True)
            done += 1
        batches = {name: [] for name in sources}
        for _ in range(per_point // batch):
            for name, source in sources.items():
                start = time.perf_counter()
                for _ in range(batch):
                    if not ip.run_cell(source, store_history=True).success:
                        raise RuntimeError(f"a {name} cell failed")
                batches[name].append((time.perf_counter() - start) / batch * 1e6)
                done += batch
        for name in sources:
            costs[name][point] = min(batches[name])
    return costs
async def _run_async_growth(levels, rounds=5, calls=80):
    # %run_async from sync code while the kernel's loop holds `level` pending tasks.
    ip = get_ipython()
    release = asyncio.Event()
    pending = []
    samples = {level: [] for level in levels}
    try:
        for index in range(rounds):
            for level in (levels if index % 2 == 0 else levels[::-1]):
                while len(pending) < level:
                    pending.append(asyncio.ensure_future(release.wait()))
                while len(pending) > level:
                    pending.pop().cancel()
                await asyncio.sleep(0)
                for _ in range(10):
                    ip.run_line_magic("run_async", "_tiny(1)")
                start = time.perf_counter()
                for _ in range(calls):
                    if ip.run_line_magic("run_async", "_tiny(1)") != 1:
                        raise RuntimeError("%run_async gave a wrong result")
                samples[level].append((time.perf_counter() - start) / calls * 1e6)
    finally:
        release.set()
        await asyncio.gather(*pending, return_exceptions=True)
    return samples
def _load_ext():
    start = time.perf_counter()
    get_ipython().run_line_magic("load_ext", "asyncbridge_ext")
    return (time.perf_counter() - start) * 1e3
"""


class Kernel:
    """One fresh kernel; :meth:`run` executes a cell and returns the JSON it printed."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="asyncbridge-bench-")
        root = Path(self._tmp.name)
        spec_dir = root / "kernels" / "bench"
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "bench",
            "language": "python",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        (root / "ipython").mkdir()
        env = dict(os.environ, IPYTHONDIR=str(root / "ipython"), PYTHONWARNINGS="ignore")
        specs = KernelSpecManager(kernel_dirs=[str(root / "kernels")])
        self._manager = KernelManager(kernel_name="bench", kernel_spec_manager=specs)
        self._manager.start_kernel(env=env)
        self._client = self._manager.client()
        self._client.start_channels()
        self._client.wait_for_ready(timeout=60)
        self.run(SETUP + "\nprint(json.dumps(None))")

    def run(self, code: str) -> Any:
        msg_id = self._client.execute(code, store_history=False)
        out: list[str] = []
        errors: list[str] = []
        while True:
            try:
                msg = self._client.get_iopub_msg(timeout=CELL_TIMEOUT)
            except Empty:
                raise TimeoutError(f"no reply from the kernel for: {code[:80]!r}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if errors:
            raise RuntimeError(f"kernel cell failed:\n{code}\n{errors[0]}")
        lines = [line for line in "".join(out).splitlines() if line.strip()]
        return json.loads(lines[-1])

    def close(self) -> None:
        self._client.stop_channels()
        self._manager.shutdown_kernel(now=True)
        self._tmp.cleanup()


#: Pending tasks on the kernel's loop for the %run_async curve; earlier cells for %%in_thread.
PENDING = (0, 200, 2000, 20000)
CELL_POINTS = (50, 300, 1000, 2000)  # the first 50 cells also warm up


def _int_keys(values: dict[str, Any]) -> dict[int, Any]:
    """JSON turned the int keys into strings; turn them back."""
    return {int(key): value for key, value in values.items()}


def _throughput_cell() -> str:
    return "print(json.dumps(await _throughput()))"


def measure_mode(mode: str, rounds: int = 5) -> dict[str, Any]:
    """Fresh kernel: throughput before / after ``%load_ext`` in ``mode``, load time, overhead.

    For "thread" and "auto" modes, load and unload alternate, so before and after
    interleave in time (both can be undone; the nest patch cannot, so "nest" is strictly
    before, after). "auto" is measured before any fallback: nothing patched yet.
    """
    kernel = Kernel()
    try:
        result: dict[str, Any] = {"mode": mode}
        if mode in ("thread", "auto"):
            kernel.run(f"%config AsyncBridge.nested_run = {mode!r}\nprint(json.dumps(None))")
        before = [kernel.run(_throughput_cell()) for _ in range(rounds)]
        result["load_ext_ms"] = kernel.run("print(json.dumps(_load_ext()))")
        after = [kernel.run(_throughput_cell()) for _ in range(rounds)]
        if mode in ("thread", "auto"):
            check = (
                "import asyncbridge_ext, asyncbridge_ext.nested.redirect as _tm\n"
                "print(json.dumps(_tm.NestedRunRedirect.installed\n"
                "                 and not asyncbridge_ext.NestAsyncio.is_applied))"
            )
            if not kernel.run(check):
                raise RuntimeError(f"{mode} mode is not active (or patched) after %load_ext")
            pairs = kernel.run("print(json.dumps(await _alternate(12)))")
            before, after = before + pairs[0], after + pairs[1]
            result["pair_ratios"] = [a / b for a, b in zip(pairs[1], pairs[0], strict=True)]
        else:
            check = (
                "import asyncbridge_ext\nprint(json.dumps(asyncbridge_ext.NestAsyncio.is_applied))"
            )
            if not kernel.run(check):
                raise RuntimeError("nest mode is not applied after %load_ext")
        result["tasks_per_s_before"] = before
        result["tasks_per_s_after"] = after
        result["cell_us"] = kernel.run("print(json.dumps(_cell_overhead(9, 100)))")
        if mode == "thread":
            samples = _int_keys(
                kernel.run(f"print(json.dumps(await _run_async_growth({list(PENDING)!r})))")
            )
            result["run_async_samples"] = samples
            result["run_async_us"] = {k: statistics.median(v) for k, v in samples.items()}
            cells = kernel.run(f"print(json.dumps(_cells_growth({list(CELL_POINTS)!r})))")
            result["cells_growth_us"] = _int_keys(cells["in_thread"])
            result["cells_growth_plain_us"] = _int_keys(cells["plain"])
        return result
    finally:
        kernel.close()


if __name__ == "__main__":
    for mode_name in ("thread", "auto", "nest"):
        print(json.dumps(measure_mode(mode_name), indent=1))
