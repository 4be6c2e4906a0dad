"""Turn one run's measurements into results/latest.md (tables, targets) and latest.png."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from contenders import CONTENDERS

LABELS = {name: label for name, (label, _) in CONTENDERS.items()}
LABELS["nest_asyncio2"] = "nested asyncio.run under nest_asyncio2 (own process)"
PEERS = ["naive", "textbook", "anyio", "jupyter_core", "nest_asyncio2"]
RUN_ASYNC = "%run_async (in a kernel)"
THREAD_LABELS = {
    "run_in_thread": "asyncbridge_ext run_in_thread(f, x)",
    "executor": "ThreadPoolExecutor(1).submit(f, x).result() (the floor)",
    "anyio": "anyio portal.call(to_thread.run_sync, f, x)",
}

# What bounds each figure, printed next to every target row that is not a PASS.
LIMITS = {
    "fresh_vs_naive": "a fresh loop per call costs its creation (epoll + self-pipe) and close, "
    "plus two cross-CPU thread wake-ups per call",
    "lt_vs_textbook": "two cross-CPU wake-ups per call (self-pipe write, lock release) "
    "dominate; the Python work per call is a few µs",
    "lt_vs_anyio": "wake-up latency: profiled on the loop thread, the lock release that wakes "
    "the caller takes ~65 µs of a loaded machine's scheduling per call, the Python work "
    "~15 µs; three loop turns per call (Python 3.11 has no eager task start to save one)",
    "cell_overhead": "one run_coroutine_in_new_loop call (a fresh loop, ~80 µs of CPU idle, "
    "plus two thread wake-ups) and the magic's own work (~0.1 ms: IPython's transform, two "
    "compiles, option parsing)",
    "in_thread_cell": "one run_in_thread call (two thread wake-ups) and the magic's own work "
    "(~0.1 ms: IPython's transform, two compiles, option parsing)",
    "import": "reading and running the package's 14 modules (~0.2-0.4 ms each from bytecode); "
    "nothing beyond the standard library is imported",
    "thread_throughput": "thread mode only wraps asyncio.run / Runner.run / "
    "run_until_complete / run_forever; a miss here is measurement noise on a shared machine",
    "nested_run": "the wrapper's routing (a running-loop check, the marker swap) is a few "
    "µs; the rest is asyncio.run itself, and noise from other processes",
    "growth": "no per-call work grows with the tasks elsewhere (the fresh loop's tasks are "
    "recorded, not searched); a miss is noise from other processes or garbage collection",
    "run_in_thread": "the same two thread wake-ups as the floor, plus the bounded, "
    "interruptible wait and the copied context (a few µs)",
    "cells_growth": "no state grows with the number of cells; a miss is noise",
}


# Where the time goes: found with cProfile and perf_counter stage timestamps while
# building this harness (see the commit history); kept here so latest.md explains itself.
NOTES = """\
## Where the time goes (profiled with cProfile and `-X importtime`)

- A fresh-loop call does ~80 µs of work on an idle machine (172 µs of CPU per call
  measured with `time.process_time()` on this shared, loaded one): `new_event_loop()` and
  `close()` (epoll, self-pipe socketpair, selector registration, the clock-resolution
  query), `run_until_complete` with four loop turns (the coroutine's `sleep(0)`, the
  cleanup's `sleep(0)` turn, the stop callback), and the cleanup itself. The rest of the
  wall time is two thread hand-offs; waking a thread on the other vCPU costs 10-80 µs here.
- Finding the fresh loop's leftover tasks no longer depends on the process. Before
  Python 3.14 `asyncio.all_tasks(loop)` walks every task alive in the process (measured:
  1.0 ms with 2,000 tasks on another loop, 10 ms with 20,000, on 3.11, 3.12 and 3.13); from
  3.14 on it is per thread (0.4 µs either way). Fresh loops now record their tasks with a
  task factory, and a reference count of the loop (one `sys.getrefcount`) tells whether
  anything unrecorded, such as a task built with `asyncio.Task(coro, loop=loop)`, may live
  on the loop; only then is `all_tasks` walked. The record costs ~5 µs per call here
  (a `WeakSet`, the factory's call, two reference counts), measured with `timeit`.
- `%run_async` also took two `all_tasks` snapshots per call (the caller's loop and the
  fresh one): 15 ms per call with 20,000 tasks pending. The caller's loop now gets a
  recording task factory while the cell waits; the fresh loop's tasks are looked up only
  when the expression is refused. (A snapshot would not do on 3.14 either: there
  `all_tasks` no longer sees tasks that another thread made for the loop.)
- `LoopThread.run` is one `call_soon_threadsafe`, a task, and a lock release: three loop
  turns per call against four for `run_coroutine_threadsafe` (whose done-callback chain
  costs a turn) and no `concurrent.futures.Future` / `Condition`. Profiled on the loop
  thread, most of a call is the wake-ups: the lock release that wakes the caller and the
  epoll wait for the next call.
- `import asyncbridge_ext` loads 14 small modules of its own and two from the standard
  library (`queue`, `__future__`); from cached bytecode that is ~5 ms of `-X importtime`
  self time. This environment sets `PYTHONDONTWRITEBYTECODE=1`, so a plain fresh process
  compiles every module from source each time, which is what last round's 22.8 ms measured;
  the target row now times imports with cached bytecode (as an installed package has), and
  the from-source figure is shown next to it. `sysconfig` (2 ms) is no longer imported.
- Evaluated, not adopted: skipping the cleanup's `sleep(0)` turn (-5 µs, but async
  generators the coroutine dropped would lose their `aclose()`); stopping the loop from the
  task instead of `run_until_complete` (noise); a spare loop pre-made by each idle worker
  (holds three descriptors per idle worker and races the descriptor-leak test); spinning
  before blocking to cut wake-up latency (burns a core on a shared 2-core machine).
"""


Row = tuple[str, str, str, "float | None", "bool | None", str]


def _targets(results: dict[str, Any]) -> list[Row]:
    """Rows: key, target text, measured text, value, passed (None = not measured), limit."""
    per = results["per_call_us"]
    kernels = results["kernels"]
    rows: list[Row] = []

    def add(key: str, text: str, shown: str, value: float, passed: bool) -> None:
        rows.append((key, text, shown, value, passed, LIMITS[key]))

    def missing(key: str, text: str, why: str) -> None:
        rows.append((key, text, "not measured", None, None, why))

    def ratio_row(key: str, text: str, num: float, den: float, bound: float) -> None:
        add(
            key, text, f"{num / den:.2f}x ({num:.0f} / {den:.0f} µs)", num / den, num / den <= bound
        )

    ratio_row(
        "fresh_vs_naive",
        "run_coroutine_in_new_loop ≤ 0.45x naive helper",
        per["fresh_loop"],
        per["naive"],
        0.45,
    )
    ratio_row(
        "lt_vs_textbook",
        "LoopThread.run ≤ 1.0x run_coroutine_threadsafe floor",
        per["loop_thread"],
        per["textbook"],
        1.0,
    )
    ratio_row(
        "lt_vs_anyio",
        "LoopThread.run ≤ 0.35x anyio portal.call",
        per["loop_thread"],
        per["anyio"],
        0.35,
    )
    for api, levels in _growth_curves(results).items():
        for level in (2000, 20000):
            if level in levels and 0 in levels:
                ratio_row(
                    "growth",
                    f"{api} with {level:,} pending tasks elsewhere ≤ 1.2x with none",
                    levels[level],
                    levels[0],
                    1.2,
                )
    if "run_async_us" not in kernels.get("thread", {}):
        missing("growth", "%run_async with pending tasks ≤ 1.2x with none", "no kernel run")
    threads = results["thread_call_us"]
    ratio_row(
        "run_in_thread",
        "run_in_thread ≤ 1.5x ThreadPoolExecutor.submit().result() floor",
        threads["run_in_thread"],
        threads["executor"],
        1.5,
    )
    for magic, key in (("in_new_loop", "cell_overhead"), ("in_thread", "in_thread_cell")):
        for mode in ("nest", "thread"):
            kernel = kernels.get(mode, {})
            text = f"%%{magic} adds ≤ 1 ms to a cell ({mode} mode)"
            if "cell_us" in kernel:
                extra = (kernel["cell_us"][magic] - kernel["cell_us"]["plain"]) / 1e3
                add(key, text, f"{extra:.2f} ms", extra, extra <= 1.0)
            else:
                missing(key, text, kernel.get("error", "no kernel run"))
    cells = kernels.get("thread", {}).get("cells_growth_us")
    text = "%%in_thread cell after 2,000 earlier cells ≤ 1.2x after 50"
    if cells:
        first, last = cells[min(cells, key=int)], cells[max(cells, key=int)]
        add(
            "cells_growth",
            text,
            f"{last / first:.2f}x ({last:.0f} / {first:.0f} µs)",
            last / first,
            last / first <= 1.2,
        )
    else:
        missing("cells_growth", text, kernels.get("thread", {}).get("error", "no kernel run"))
    imp = statistics.median(results["import_ms"])
    add(
        "import",
        "import asyncbridge_ext ≤ 20 ms (asyncio already imported, bytecode cached)",
        f"{imp:.1f} ms",
        imp,
        imp <= 20.0,
    )
    for mode in ("thread", "auto"):
        kernel = kernels.get(mode, {})
        text = f"{mode} mode: kernel asyncio throughput ≥ 0.97x unpatched"
        if mode == "auto":
            text += " (before any fallback)"
        if "tasks_per_s_after" in kernel:
            value = _throughput_ratio(kernel)
            add("thread_throughput", text, f"{value:.3f}x", value, value >= 0.97)
        else:
            missing("thread_throughput", text, kernel.get("error", "-"))
    nested = kernels.get("nested_run", {})
    text = "thread mode: nested asyncio.run in a kernel ≤ 1.15x the same in a plain script"
    if "ratio" in nested:
        value = nested["ratio"]
        shown = (
            f"{value:.2f}x ({statistics.median(nested['kernel_us']):.0f} / "
            f"{statistics.median(nested['script_us']):.0f} µs)"
        )
        add("nested_run", text, shown, value, value <= 1.15)
    else:
        missing("nested_run", text, nested.get("error", "-"))
    return rows


def _growth_fastest(results: dict[str, Any]) -> dict[str, dict[int, float]]:
    """api -> pending tasks -> the fastest round."""
    fastest = {
        api: {int(level): min(values) for level, values in levels.items()}
        for api, levels in results.get("growth_samples", {}).items()
    }
    run_async = results["kernels"].get("thread", {}).get("run_async_samples")
    if run_async:
        fastest[RUN_ASYNC] = {int(level): min(values) for level, values in run_async.items()}
    return fastest


def _growth_curves(results: dict[str, Any]) -> dict[str, dict[int, float]]:
    """api -> pending tasks -> µs per call, with %run_async from the thread-mode kernel."""
    curves: dict[str, dict[int, float]] = {
        api: {int(level): value for level, value in levels.items()}
        for api, levels in results["growth_us"].items()
    }
    run_async = results["kernels"].get("thread", {}).get("run_async_us")
    if run_async:
        curves[RUN_ASYNC] = {int(k): v for k, v in run_async.items()}
    return curves


def _throughput_ratio(kernel: dict[str, Any]) -> float:
    """after / before: median of adjacent-pair ratios when there are pairs (thread mode)."""
    if kernel.get("pair_ratios"):
        return float(statistics.median(kernel["pair_ratios"]))
    return statistics.median(kernel["tasks_per_s_after"]) / statistics.median(
        kernel["tasks_per_s_before"]
    )


def markdown(results: dict[str, Any]) -> str:
    info, per = results["info"], results["per_call_us"]
    lines = [
        "# asyncbridge_ext benchmarks (latest run)",
        "",
        f"Python {info['python']}, {info['machine']}; load average (1/5/15 min) before "
        f"{info['load_before']}, after {info['load_after']}; {info['rounds']} interleaved rounds "
        f"x {info['calls']} calls per contender; run took {info['seconds']:.0f} s. "
        "Shared machine: compare ratios within this run, not µs across runs.",
        "",
        "## Targets",
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    misses = []
    for _key, text, shown, _value, passed, limit in _targets(results):
        verdict = "not measured" if passed is None else ("PASS" if passed else "**MISS**")
        lines.append(f"| {text} | {shown} | {verdict} |")
        if passed is not True:
            misses.append(f"- {text}: {shown}. Limited by: {limit}.")
    if misses:
        lines += ["", "Misses and what limits them:", "", *misses]
    lines += [
        "",
        "## Per call, from sync code inside a running event loop",
        "",
        "Each call runs `await asyncio.sleep(0); return x + 1` to completion. Median over "
        "rounds of µs per call; ratio columns divide the row by the column's contender.",
        "",
        "| contender | µs/call | " + " | ".join(f"x {p}" for p in PEERS) + " |",
        "|---|---:|" + "---:|" * len(PEERS),
    ]
    for name, value in per.items():
        ratios = " | ".join(f"{value / per[p]:.2f}" for p in PEERS)
        lines.append(f"| {LABELS[name]} | {value:.1f} | {ratios} |")
    curves = _growth_curves(results)
    levels = sorted({level for curve in curves.values() for level in curve})
    lines += [
        "",
        "## Per call against pending tasks elsewhere in the process",
        "",
        "The caller's loop holds this many pending tasks (unrelated work, as a notebook with "
        "a server or a crawler in the background has); µs per call, median of interleaved "
        "rounds, the ratio to the same call with none, and the fastest round (the cost "
        "without interference from other processes).",
        "",
        "| API | " + " | ".join(f"{level:,} tasks" for level in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    fastest = _growth_fastest(results)
    for api, curve in curves.items():
        cells = [
            f"{curve[level]:.0f} ({curve[level] / curve[0]:.2f}x)"
            + (f", min {fastest[api][level]:.0f}" if level in fastest.get(api, {}) else "")
            if level in curve
            else "-"
            for level in levels
        ]
        lines.append(f"| {api} | " + " | ".join(cells) + " |")
    threads = results["thread_call_us"]
    lines += [
        "",
        "## run_in_thread per call, from sync code inside a running loop",
        "",
        "| contender | µs/call | x floor |",
        "|---|---:|---:|",
    ]
    for name, label in THREAD_LABELS.items():
        value = threads[name]
        lines.append(f"| {label} | {value:.1f} | {value / threads['executor']:.2f} |")
    imports, source = results["import_ms"], results["import_source_ms"]
    lines += [
        "",
        f"`import asyncbridge_ext` after `import asyncio`, fresh process, bytecode cached: "
        f"median {statistics.median(imports):.1f} ms (min {min(imports):.1f}, max "
        f"{max(imports):.1f}, n={len(imports)}); compiled from source each time (as here, "
        f"where the environment sets PYTHONDONTWRITEBYTECODE="
        f"{info.get('no_bytecode_env') or 'unset'}, unless bytecode lies next to the "
        f"sources): median {statistics.median(source):.1f} ms (n={len(source)}).",
    ]
    lines += [
        "",
        "## In a Jupyter kernel (ipykernel, timed inside the kernel)",
        "",
        "| mode | `%load_ext` (first) | tasks/s before | tasks/s after | after / before "
        "| plain cell | `%%in_new_loop` cell | overhead | `%%in_thread` cell | overhead |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("nest", "thread", "auto"):
        kernel = results["kernels"].get(mode)
        if not kernel or "error" in kernel:
            why = kernel.get("error", "skipped") if kernel else "skipped"
            lines.append(f"| {mode} | not measured: {why} | | | | | | | | |")
            continue
        before = statistics.median(kernel["tasks_per_s_before"])
        after = statistics.median(kernel["tasks_per_s_after"])
        cell = kernel["cell_us"]
        lines.append(
            f"| {mode} | {kernel['load_ext_ms']:.1f} ms | {before:,.0f} | {after:,.0f} | "
            f"{_throughput_ratio(kernel):.3f}x | {cell['plain']:.0f} µs | "
            f"{cell['in_new_loop']:.0f} µs | "
            f"{(cell['in_new_loop'] - cell['plain']) / 1e3:.2f} ms | "
            f"{cell['in_thread']:.0f} µs | {(cell['in_thread'] - cell['plain']) / 1e3:.2f} ms |"
        )
    lines += [
        "",
        "Throughput: `await asyncio.gather(*4000 tiny tasks)` on the kernel's loop, median of "
        "5 per cell. Nest mode cannot be undone, so it is before-then-after. Thread and auto "
        "modes also alternate `%unload_ext` / `%load_ext` 24 times inside one cell, and their "
        "ratio is the median of the ratios of adjacent after/before samples, so load changes "
        "on this shared machine cancel out (auto is measured before any fallback, when "
        "nothing is patched). Cell cost: "
        "`get_ipython().run_cell(...)` in a loop inside the kernel, `_x = 1 + 1` as a plain "
        "cell and under `%%in_new_loop` / `%%in_thread`, interleaved rounds, median.",
        "",
        *_cells_growth_lines(results["kernels"].get("thread", {})),
        "",
        *_nested_run_lines(results["kernels"].get("nested_run", {})),
        "",
        "## Scale: N caller threads at once, each making the same number of calls",
        "",
        "| API | caller threads | calls | calls/s | correct | asyncbridge worker threads |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in results["scale"]:
        workers = (
            row["worker_threads"]
            if row["api"] != "LoopThread.run"
            else (f"{row['loop_threads']} loop thread")
        )
        lines.append(
            f"| {row['api']} | {row['threads']} | {row['calls']} | {row['calls_per_s']:,.0f} | "
            f"{'yes' if row['correct'] else '**NO**'} | {workers} |"
        )
    lines += [
        "",
        "Median of 3 runs per row. Every call has a 60 s timeout and every wait is bounded, "
        "so a deadlock would show as "
        "an error. Worker threads are counted after each row (idle workers linger "
        "10 s), so the figure is the peak that row needed: it follows the number of calls "
        "in flight, never the number of calls made.",
        "",
        "![per-call cost and scaling](latest.png)",
        "",
        NOTES,
    ]
    return "\n".join(lines)


def _cells_growth_lines(kernel: dict[str, Any]) -> list[str]:
    cells = kernel.get("cells_growth_us")
    if not cells:
        return ["`%%in_thread` cells against earlier cells: not measured."]
    points = sorted(cells, key=int)
    rows = [("`%%in_thread` cell", cells)]
    if kernel.get("cells_growth_plain_us"):
        rows.append(("plain cell (for comparison)", kernel["cells_growth_plain_us"]))
    lines = [
        "`%%in_thread` cells run as real cells (history stored, in bulk; execution count "
        "growing), thread mode; µs per cell after this many earlier ones (the first 50 also "
        "warm up), the fastest of 8 interleaved batches of 10 (bursts of load from other "
        "processes on this shared machine swamp medians here; a cost that grew with the cells "
        "would show in the fastest batch too), and the ratio to the first point:",
        "",
        "| earlier cells | " + " | ".join(f"{int(p):,}" for p in points) + " |",
        "|---|" + "---:|" * len(points),
    ]
    for label, values in rows:
        first = values[points[0]]
        lines.append(
            f"| {label} | "
            + " | ".join(f"{values[p]:.0f} ({values[p] / first:.2f}x)" for p in points)
            + " |"
        )
    return lines


def _nested_run_lines(nested: dict[str, Any]) -> list[str]:
    if "ratio" not in nested:
        return [f"Nested `asyncio.run`, kernel vs script: not measured ({nested.get('error')})."]
    kernel, script = nested["kernel_us"], nested["script_us"]
    return [
        "Nested `asyncio.run(coro)` (the coroutine does `await asyncio.sleep(0)`), "
        f"{nested['calls']} calls per round, {len(kernel)} interleaved rounds: inside the "
        f"kernel in thread mode, from a cell, {statistics.median(kernel):.0f} µs per call "
        f"(rounds: {', '.join(f'{v:.0f}' for v in kernel)}); in the main thread of a plain "
        f"script, {statistics.median(script):.0f} µs "
        f"(rounds: {', '.join(f'{v:.0f}' for v in script)}): {nested['ratio']:.2f}x. The "
        "kernel served every call on the cell's own thread with the kernel's loop paused "
        f"({nested['served_same_thread']} counted).",
    ]


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = results["per_call_us"]
    fig, (left, right, growth) = plt.subplots(1, 3, figsize=(19, 4.8))
    names = list(per)[::-1]
    colors = ["tab:blue" if n in ("fresh_loop", "loop_thread") else "tab:gray" for n in names]
    left.barh([LABELS[n] for n in names], [per[n] for n in names], color=colors)
    for index, name in enumerate(names):
        left.text(per[name], index, f" {per[name]:.0f}", va="center", fontsize=8)
    left.set_xlabel("µs per call (median; lower is better)")
    left.set_title("One call from sync code inside a running loop")
    left.tick_params(axis="y", labelsize=8)
    for api, marker in (("run_coroutine_in_new_loop", "o"), ("LoopThread.run", "s")):
        rows = [row for row in results["scale"] if row["api"] == api]
        right.plot(
            [r["threads"] for r in rows], [r["calls_per_s"] for r in rows], marker=marker, label=api
        )
    right.set_xscale("log", base=2)
    right.set_xlabel("caller threads at once")
    right.set_ylabel("calls per second")
    right.set_title("Throughput under concurrency")
    right.legend()
    for api, curve in _growth_curves(results).items():
        levels = sorted(curve)
        # 0 pending tasks sits at x=1 on the log axis (labelled 0 below)
        growth.plot(
            [max(level, 1) for level in levels], [curve[n] for n in levels], marker="o", label=api
        )
    growth.set_xscale("log")
    growth.set_xticks([1, 200, 2000, 20000], ["0", "200", "2,000", "20,000"])
    growth.set_ylim(bottom=0)
    growth.set_xlabel("pending tasks elsewhere in the process")
    growth.set_ylabel("µs per call (median)")
    growth.set_title("Per-call cost does not grow with unrelated tasks")
    growth.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


README_START = "<!-- make bench writes from here to the end marker; edit report.py instead -->"
README_END = "<!-- end of the part make bench writes -->"
TIMES = "\u00d7"  # the multiplication sign the README uses

README_ROWS = {
    "fresh_loop": "`run_coroutine_in_new_loop` (fresh loop every call)",
    "loop_thread": "`LoopThread.run`",
    "naive": "naive: new thread + new loop per call",
    "textbook": "`run_coroutine_threadsafe(...).result()`, persistent loop",
    "anyio": "anyio `BlockingPortal.call`",
    "jupyter_core": "`jupyter_core.utils.run_sync`",
    "nest_asyncio2": "nested `asyncio.run` under nest_asyncio2",
}


def readme_section(results: dict[str, Any]) -> str:
    """The README's figures, from the same run as latest.md."""
    info, per, kernels = results["info"], results["per_call_us"], results["kernels"]
    lines = [
        f"One run on a {info['machine'].split(', ')[-1].replace(' CPUs', '-CPU')} machine, "
        f"Python {info['python']} "
        f"(load average {info['load_before'].split(' / ')[0]} at the start, "
        f"{info['load_after'].split(' / ')[0]} at the end; compare ratios, not microseconds):",
        "",
        f"| per call | µs | {TIMES} naive helper |",
        "|---|---:|---:|",
    ]
    for name, label in README_ROWS.items():
        if name in per:
            lines.append(f"| {label} | {per[name]:.0f} | {per[name] / per['naive']:.2f} |")
    lt = per["loop_thread"]
    text = [
        f"`LoopThread.run` costs {lt / per['textbook']:.2f}{TIMES} the textbook "
        f"`run_coroutine_threadsafe` floor and {lt / per['anyio']:.2f}{TIMES} anyio's portal.",
    ]
    worst, worst_fastest = (
        _worst_growth(_growth_curves(results)),
        _worst_growth(_growth_fastest(results)),
    )
    text.append(
        "With up to 20,000 unrelated tasks pending on the caller's loop, a call cost at most "
        f"{worst[0]:.2f}{TIMES} what it cost with none ({worst[1]}; medians), and the fastest "
        f"rounds at most {worst_fastest[0]:.2f}{TIMES} ({worst_fastest[1]})."
    )
    threads = results["thread_call_us"]
    text.append(
        f"`run_in_thread` costs {threads['run_in_thread'] / threads['executor']:.2f}{TIMES} "
        "a plain "
        "`ThreadPoolExecutor.submit(...).result()` and "
        f"{threads['run_in_thread'] / threads['anyio']:.2f}{TIMES} anyio's "
        "`portal.call(to_thread.run_sync, ...)`."
    )
    text.append(
        f"`import asyncbridge_ext` takes {statistics.median(results['import_ms']):.1f} ms "
        f"({statistics.median(results['import_source_ms']):.1f} ms when every module is "
        "compiled from source)."
    )
    cell = kernels.get("thread", {}).get("cell_us")
    if cell:
        text.append(
            f"In a kernel (thread mode), `%%in_new_loop` adds "
            f"{(cell['in_new_loop'] - cell['plain']) / 1e3:.2f} ms to a cell and `%%in_thread` "
            f"{(cell['in_thread'] - cell['plain']) / 1e3:.2f} ms."
        )
    nested = kernels.get("nested_run", {})
    if "ratio" in nested:
        text.append(
            "A nested `asyncio.run` in thread mode, timed inside the kernel, costs "
            f"{nested['ratio']:.2f}{TIMES} the same `asyncio.run` in the main thread of a "
            "plain script."
        )
    modes = [
        f"{mode} mode {_throughput_ratio(kernels[mode]):.3f}{TIMES}"
        for mode in ("thread", "auto", "nest")
        if "tasks_per_s_after" in kernels.get(mode, {})
    ]
    if modes:
        text.append("Kernel asyncio throughput after `%load_ext`: " + ", ".join(modes) + ".")
    return "\n".join([*lines, "", " ".join(text)])


def _worst_growth(curves: dict[str, dict[int, float]]) -> tuple[float, str]:
    """The largest ratio to "no pending tasks" at 2,000 and 20,000, and its API."""
    return max(
        (
            (curve[level] / curve[0], api)
            for api, curve in curves.items()
            for level in (2000, 20000)
            if level in curve and 0 in curve
        ),
        default=(float("nan"), "not measured"),
    )


def write_readme_section(readme: Path, section: str) -> bool:
    """Replace the README's part between the markers; False if the markers are missing."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n\n{section}\n\n{README_END}{tail}")
    return True
