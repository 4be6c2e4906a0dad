"""The benchmark harness itself: each in-process contender returns the right result.

No timing here; figures belong to ``make bench``, not to pass/fail tests.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from contenders import CONTENDERS

NEEDS = {"anyio": "anyio", "jupyter_core": "jupyter_core"}


@pytest.mark.parametrize("name", list(CONTENDERS))
def test_contender_runs_from_sync_code_inside_a_running_loop(name: str) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    call, close = CONTENDERS[name][1]()

    async def cell() -> list[int]:
        return [call(x) for x in range(3)]

    try:
        assert asyncio.run(cell()) == [1, 2, 3]
    finally:
        close()


def test_growth_curve_measures_every_api_at_every_level() -> None:
    import growth

    samples = growth.pending_tasks_curve(rounds=1, calls=3, levels=(0, 5))
    assert set(samples) == {"run_coroutine_in_new_loop", "LoopThread.run"}
    for levels in samples.values():
        assert set(levels) == {0, 5}
        assert all(len(values) == 1 and values[0] > 0 for values in levels.values())


def test_thread_calls_measure_run_in_thread_the_floor_and_anyio() -> None:
    pytest.importorskip("anyio")
    import growth

    samples = growth.thread_calls(rounds=1, calls=3)
    assert set(samples) == {"run_in_thread", "executor", "anyio"}
    assert all(len(values) == 1 and values[0] > 0 for values in samples.values())


@pytest.mark.timeout(240)
def test_kernel_bench_growth_and_cell_costs_run_in_a_kernel() -> None:
    import kernel_bench

    kernel = kernel_bench.Kernel()
    try:
        kernel.run("%config AsyncBridge.nested_run = 'thread'\nprint(json.dumps(None))")
        kernel.run("print(json.dumps(_load_ext()))")
        cells = kernel.run("print(json.dumps(_cell_overhead(1, 2)))")
        assert set(cells) == {"plain", "in_new_loop", "in_thread"}
        run_async = kernel.run("print(json.dumps(await _run_async_growth([0, 5], 1, 2)))")
        assert set(run_async) == {"0", "5"} and all(len(v) == 1 for v in run_async.values())
        growth = kernel.run("print(json.dumps(_cells_growth([1, 3], per_point=2, batch=1)))")
        assert set(growth) == {"plain", "in_thread"}
        assert set(growth["in_thread"]) == {"1", "3"}
        # the earlier cells ran as real cells: the execution count moved on
        assert kernel.run("print(json.dumps(get_ipython().execution_count))") >= 1 + 2 + 2
    finally:
        kernel.close()


def test_report_renders_the_new_tables_and_the_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import report

    per = {name: 100.0 + index for index, name in enumerate([*CONTENDERS, "nest_asyncio2"])}
    curve = {
        api: {0: [100.0], 20000: [110.0]} for api in ("run_coroutine_in_new_loop", "LoopThread.run")
    }
    cells = {"plain": 200.0, "in_new_loop": 900.0, "in_thread": 500.0}
    results = {
        "info": {
            "python": "3",
            "machine": "m",
            "load_before": "0",
            "load_after": "0",
            "rounds": 1,
            "calls": 1,
            "seconds": 1.0,
        },
        "per_call_us": per,
        "import_ms": [5.0],
        "import_source_ms": [20.0],
        "growth_samples": curve,
        "growth_us": {api: {0: 100.0, 20000: 110.0} for api in curve},
        "thread_call_us": {"run_in_thread": 40.0, "executor": 30.0, "anyio": 600.0},
        "kernels": {
            "thread": {
                "cell_us": cells,
                "run_async_us": {0: 500.0, 20000: 550.0},
                "cells_growth_us": {50: 2000.0, 2000: 2100.0},
                "tasks_per_s_before": [1.0],
                "tasks_per_s_after": [1.0],
                "load_ext_ms": 1.0,
            },
        },
        "scale": [],
    }
    text = report.markdown(results)
    # run.py --rewrite renders the same report from latest.json, whose keys are strings
    assert report.markdown(json.loads(json.dumps(results))) == text
    assert "| %run_async (in a kernel) | 500 (1.00x) | 550 (1.10x) |" in text
    assert (
        "| run_coroutine_in_new_loop with 20,000 pending tasks elsewhere ≤ 1.2x with none " in text
    )
    assert "run_in_thread ≤ 1.5x ThreadPoolExecutor.submit().result() floor | 1.33x" in text
    assert "%%in_thread adds ≤ 1 ms to a cell (thread mode) | 0.30 ms | PASS" in text
    assert "%%in_thread cell after 2,000 earlier cells ≤ 1.2x after 50 | 1.05x" in text
    report.chart(results, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0
    section = report.readme_section(results)
    assert "| `LoopThread.run` | 101 |" in section
    assert f"a call cost at most 1.10{report.TIMES} what it cost with none" in section
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{report.README_START}\nold figures\n{report.README_END}\nafter\n")
    assert report.write_readme_section(readme, section)
    written = readme.read_text()
    assert "old figures" not in written and section in written
    assert written.startswith("before\n") and written.endswith("after\n")


def test_the_readme_has_the_markers_make_bench_writes_between() -> None:
    import report

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert text.count(report.README_START) == 1 and text.count(report.README_END) == 1
