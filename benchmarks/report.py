"""Turn one run's measurements into results/latest.md (tables, targets) and latest.png."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from contenders import CONTENDERS

LABELS = {name: label for name, (label, _) in CONTENDERS.items()}
LABELS["nest_asyncio2"] = "nested asyncio.run under nest_asyncio2 (own process)"
PEERS = ["naive", "textbook", "anyio", "jupyter_core", "nest_asyncio2"]

# Why a target can miss, printed next to a MISS.
LIMITS = {
    "fresh_vs_naive": "a fresh loop per call costs its creation (epoll + self-pipe) and close, "
    "plus two cross-CPU thread wake-ups per call",
    "lt_vs_textbook": "two cross-CPU wake-ups per call (self-pipe write, lock release) "
    "dominate; the Python work per call is a few µs",
    "lt_vs_anyio": "same as above: wake-up latency, not Python work, is most of the call",
    "cell_overhead": "%%in_new_loop parses options, compiles the body and runs it through "
    "run_coroutine_in_new_loop (a fresh loop + two thread hand-offs)",
    "import": "the import chain of asyncbridge_ext (asyncio is already loaded)",
    "thread_throughput": "thread mode only wraps asyncio.run / Runner.run / "
    "run_until_complete / run_forever; a miss here is measurement noise on a shared machine",
    "nested_run": "the wrapper's routing (a running-loop check, the marker swap) is a few "
    "µs; the rest is asyncio.run itself, and noise from other processes",
}


# Where the time goes: found with cProfile and perf_counter stage timestamps while
# building this harness (see the commit history); kept here so latest.md explains itself.
NOTES = """\
## Where the time goes (profiled while building this harness)

- A fresh-loop call does ~80 µs of work when run on one thread: `new_event_loop()` +
  `close()` ~29 µs (epoll + self-pipe socketpair), `run_until_complete` with four loop
  turns (the coroutine's own `sleep(0)`, the cleanup's `sleep(0)` turn, the stop callback),
  and ~20 µs of cleanup (leftover-task scan, `shutdown_asyncgens`,
  `shutdown_default_executor`, one bounding timer). Logging on the hot path is ~0.3 µs.
- The rest is two thread hand-offs per call. Pinned to one CPU (`taskset -c 0`) a call
  costs ~100 µs; on two CPUs 110-190 µs, because waking a thread on the other (often
  idle) vCPU costs 10-80 µs here; an empty hand-off alone measured 7 µs pinned and 8-80 µs
  unpinned. The same wake-ups set the floor of every thread-based contender.
- `LoopThread.run` is one `call_soon_threadsafe`, a task, and a lock release: three loop
  turns per call against four for `run_coroutine_threadsafe` (whose done-callback chain
  costs a turn) and no `concurrent.futures.Future` / `Condition`.
- Evaluated, not adopted: skipping the cleanup's `sleep(0)` turn (-5 µs, but async
  generators the coroutine dropped would lose their `aclose()`); stopping the loop from the
  task instead of `run_until_complete` (-6 µs in one run, +40 µs in another: noise);
  tracking the loop's tasks with a task factory instead of `asyncio.all_tasks(loop)`
  (2000 tasks elsewhere: 393 -> 92 µs per call, but a task made with `asyncio.Task(...)`
  directly escapes the factory and would be destroyed pending instead of cancelled, a
  change of semantics); a spare loop pre-made by each idle worker (takes loop creation off
  the critical path, but holds three descriptors per idle worker and races the
  descriptor-leak test).
"""


def _targets(results: dict[str, Any]) -> list[tuple[str, str, str, float | None, bool | None, str]]:
    """Rows: key, target text, measured text, value, passed (None = not measured), limit."""
    per = results["per_call_us"]
    rows: list[tuple[str, str, str, float | None, bool | None, str]] = []

    def ratio_row(key: str, text: str, num: str, den: str, bound: float) -> None:
        value = per[num] / per[den]
        shown = f"{value:.2f}x ({per[num]:.0f} / {per[den]:.0f} µs)"
        rows.append((key, text, shown, value, value <= bound, LIMITS[key]))

    ratio_row(
        "fresh_vs_naive",
        "run_coroutine_in_new_loop ≤ 0.45x naive helper",
        "fresh_loop",
        "naive",
        0.45,
    )
    ratio_row(
        "lt_vs_textbook",
        "LoopThread.run ≤ 1.0x run_coroutine_threadsafe floor",
        "loop_thread",
        "textbook",
        1.0,
    )
    ratio_row(
        "lt_vs_anyio", "LoopThread.run ≤ 0.35x anyio portal.call", "loop_thread", "anyio", 0.35
    )
    for mode in ("nest", "thread"):
        kernel = results["kernels"].get(mode, {})
        text = f"%%in_new_loop adds ≤ 1 ms to a cell ({mode} mode)"
        if "cell_us" in kernel:
            extra = (kernel["cell_us"]["in_new_loop"] - kernel["cell_us"]["plain"]) / 1e3
            rows.append(
                (
                    "cell_overhead",
                    text,
                    f"{extra:.2f} ms",
                    extra,
                    extra <= 1.0,
                    LIMITS["cell_overhead"],
                )
            )
        else:
            rows.append(
                (
                    "cell_overhead",
                    text,
                    "not measured",
                    None,
                    None,
                    kernel.get("error", "no kernel run"),
                )
            )
    imp = statistics.median(results["import_ms"])
    rows.append(
        (
            "import",
            "import asyncbridge_ext ≤ 20 ms (asyncio already imported)",
            f"{imp:.1f} ms",
            imp,
            imp <= 20.0,
            LIMITS["import"],
        )
    )
    for mode in ("thread", "auto"):
        kernel = results["kernels"].get(mode, {})
        text = f"{mode} mode: kernel asyncio throughput ≥ 0.97x unpatched"
        if mode == "auto":
            text += " (before any fallback)"
        if "tasks_per_s_after" in kernel:
            value = _throughput_ratio(kernel)
            rows.append(
                (
                    "thread_throughput",
                    text,
                    f"{value:.3f}x",
                    value,
                    value >= 0.97,
                    LIMITS["thread_throughput"],
                )
            )
        else:
            rows.append(
                ("thread_throughput", text, "not measured", None, None, kernel.get("error", "-"))
            )
    nested = results["kernels"].get("nested_run", {})
    text = "thread mode: nested asyncio.run in a kernel ≤ 1.15x the same in a plain script"
    if "ratio" in nested:
        value = nested["ratio"]
        shown = (
            f"{value:.2f}x ({statistics.median(nested['kernel_us']):.0f} / "
            f"{statistics.median(nested['script_us']):.0f} µs)"
        )
        rows.append(("nested_run", text, shown, value, value <= 1.15, LIMITS["nested_run"]))
    else:
        rows.append(("nested_run", text, "not measured", None, None, nested.get("error", "-")))
    return rows


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
    busy = results["busy_us"]
    lines += [
        "",
        f"`run_coroutine_in_new_loop` while the caller's loop holds 2000 pending tasks: "
        f"{busy[2000]:.0f} µs per call, against {busy[0]:.0f} µs with none (median of 3). The "
        "cleanup's `asyncio.all_tasks(loop)` walks every task alive in the process, whatever "
        "its loop (Python < 3.14); see the notes below.",
    ]
    imports = results["import_ms"]
    lines += [
        "",
        f"`import asyncbridge_ext` after `import asyncio`, fresh process: median "
        f"{statistics.median(imports):.1f} ms (min {min(imports):.1f}, max {max(imports):.1f}, "
        f"n={len(imports)}).",
        "",
        "## In a Jupyter kernel (ipykernel, timed inside the kernel)",
        "",
        "| mode | `%load_ext` (first) | tasks/s before | tasks/s after | after / before "
        "| plain cell | `%%in_new_loop` cell | overhead |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("nest", "thread", "auto"):
        kernel = results["kernels"].get(mode)
        if not kernel or "error" in kernel:
            why = kernel.get("error", "skipped") if kernel else "skipped"
            lines.append(f"| {mode} | not measured: {why} | | | | | | |")
            continue
        before = statistics.median(kernel["tasks_per_s_before"])
        after = statistics.median(kernel["tasks_per_s_after"])
        cell = kernel["cell_us"]
        lines.append(
            f"| {mode} | {kernel['load_ext_ms']:.1f} ms | {before:,.0f} | {after:,.0f} | "
            f"{_throughput_ratio(kernel):.3f}x | {cell['plain']:.0f} µs | "
            f"{cell['in_new_loop']:.0f} µs | "
            f"{(cell['in_new_loop'] - cell['plain']) / 1e3:.2f} ms |"
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
        "cell and under `%%in_new_loop`, interleaved rounds, median.",
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
