"""``make bench``: measure asyncbridge_ext against its peers; write results/latest.{md,png}.

One process (plus one helper process for the nest_asyncio2 contender and fresh Jupyter
kernels for the kernel rows). Per-call figures come from sync code running inside a live
event loop (the notebook situation), in interleaved rounds; every ratio compares figures
measured in this same run. Numbers from a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import growth
import kernel_bench
import nested_cost
import percall
import report
import scale
from contenders import CONTENDERS

RESULTS = Path(__file__).resolve().parent / "results"

IMPORT_SNIPPET = (
    "import asyncio, time\n"
    "start = time.perf_counter()\n"
    "import asyncbridge_ext\n"
    "print((time.perf_counter() - start) * 1e3)\n"
)


def import_ms(repeats: int, bytecode: Path, cached: bool) -> list[float]:
    """``import asyncbridge_ext`` in fresh processes that already imported asyncio (ms).

    Bytecode is read from and written to the directory ``bytecode`` only
    (``PYTHONPYCACHEPREFIX``), so ``.pyc`` files lying next to the sources do not count.
    ``cached``: two untimed imports fill it first, so modules load from ``.pyc`` as they do
    once installed; otherwise nothing is written there (``PYTHONDONTWRITEBYTECODE=1``) and
    every import compiles the package from source.
    """
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(bytecode))
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    times = []
    for index in range(repeats + (2 if cached else 0)):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_SNIPPET],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env=env,
        ).stdout
        if not cached or index >= 2:
            times.append(float(out))
    return times


def load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=400, help="calls per contender per round")
    parser.add_argument("--scale-calls", type=int, default=200, help="calls per caller thread")
    parser.add_argument("--growth-rounds", type=int, default=7, help="rounds of the growth curve")
    parser.add_argument("--no-kernel", action="store_true", help="skip the Jupyter kernel rows")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.time()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": load_average(),
        "rounds": args.rounds,
        "calls": args.calls,
    }
    print(f"load average before: {info['load_before']}", flush=True)

    print("per-call rounds ...", flush=True)
    samples = percall.measure_in_running_loop(list(CONTENDERS), args.rounds, args.calls)
    print("growth: per call against pending tasks elsewhere ...", flush=True)
    curve = growth.pending_tasks_curve(rounds=args.growth_rounds, calls=150)
    print("run_in_thread against the executor floor and anyio ...", flush=True)
    thread_calls = growth.thread_calls(rounds=15)
    print("import time ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="asyncbridge-pyc-") as pyc:
        imports = import_ms(15, Path(pyc), cached=True)
    with tempfile.TemporaryDirectory(prefix="asyncbridge-nopyc-") as pyc:
        imports_source = import_ms(9, Path(pyc), cached=False)
    info["no_bytecode_env"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    kernels: dict[str, Any] = {}
    if not args.no_kernel:
        for mode in ("thread", "auto", "nest"):
            print(f"kernel, {mode} mode ...", flush=True)
            try:
                kernels[mode] = kernel_bench.measure_mode(mode)
            except Exception as exc:  # report the row as not measured, keep going
                kernels[mode] = {"error": f"{type(exc).__name__}: {exc}"}
        print("nested asyncio.run: kernel (thread mode) vs script ...", flush=True)
        try:
            kernels["nested_run"] = nested_cost.measure()
        except Exception as exc:
            kernels["nested_run"] = {"error": f"{type(exc).__name__}: {exc}"}
    print("scale ...", flush=True)
    scale_rows = scale.run_all(calls=args.scale_calls)
    info["load_after"] = load_average()
    info["seconds"] = time.time() - started

    results = {
        "info": info,
        "per_call_us": {name: statistics.median(values) for name, values in samples.items()},
        "per_call_samples": samples,
        "import_ms": imports,
        "import_source_ms": imports_source,
        "growth_samples": curve,
        "growth_us": {api: growth.medians(levels) for api, levels in curve.items()},
        "thread_call_us": growth.medians(thread_calls),
        "kernels": kernels,
        "scale": scale_rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    # Every figure of the run, so the report can be written again without measuring
    # (python benchmarks/run.py --rewrite); JSON turns the integer keys into strings.
    (args.out / "latest.json").write_text(json.dumps(results, indent=1))
    write_reports(results, args.out)


def write_reports(results: dict[str, Any], out: Path) -> None:
    """latest.md, latest.png and (for the committed results) the README's figures."""
    text = report.markdown(results)
    (out / "latest.md").write_text(text)
    report.chart(results, out / "latest.png")
    if out == RESULTS:  # the README shows the figures of the committed results
        readme = RESULTS.parents[1] / "README.md"
        if not report.write_readme_section(readme, report.readme_section(results)):
            print(f"note: {readme} has no benchmark markers; left alone", file=sys.stderr)
    print(text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rewrite"]:  # the report again, from results/latest.json
        write_reports(json.loads((RESULTS / "latest.json").read_text()), RESULTS)
    else:
        main()
