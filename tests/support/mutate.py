"""Re-run the mutations of tests/MUTATIONS.md: each must make its tests fail N times out of N.

Usage (from the repository root)::

    .venv/bin/python tests/support/mutate.py                # every mutation in mutations.json
    .venv/bin/python tests/support/mutate.py NAME ... -n 3  # some of them, 3 runs each

Each mutation is applied alone to a copy of the working tree under a temporary directory,
never to the tree itself; ``PYTHONPATH`` points the tests (and the kernels they start) at
that copy. Its tests then run N times (``-x -p no:cacheprovider``, at ``nice 5``); one
passing run is reported as SURVIVED. Exit status 1 if any mutation survived or could not
be applied. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "support" / "mutations.json"
SKIP = shutil.ignore_patterns(".venv", ".git", ".nox", "__pycache__", "*.egg-info", ".*_cache")


def run_one(name: str, mutation: dict[str, object], runs: int) -> bool:
    """Apply ``mutation`` in a copy of the tree; True if all ``runs`` runs failed."""
    with tempfile.TemporaryDirectory(prefix=f"mutation-{name}-") as tmp:
        copy = Path(tmp) / "tree"
        shutil.copytree(ROOT, copy, ignore=SKIP)
        target = copy / str(mutation["file"])
        text = target.read_text()
        old, new = str(mutation["old"]), str(mutation["new"])
        if text.count(old) != 1:
            print(f"{name}: the code to change appears {text.count(old)} times in {target.name}")
            return False
        target.write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        where = subprocess.run(
            [sys.executable, "-c", "import asyncbridge_ext; print(asyncbridge_ext.__file__)"],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
        ).stdout
        if not where.startswith(str(copy)):
            print(f"{name}: the tests would import the package from {where!r}, not the copy")
            return False
        tests = [str(test) for test in mutation["tests"]]  # type: ignore[attr-defined]
        command = ["nice", "-n", "5", sys.executable, "-m", "pytest", "-x", "-q"]
        command += ["-p", "no:cacheprovider", *tests]
        for run in range(1, runs + 1):
            done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
            if done.returncode == 0:
                print(f"{name}: SURVIVED on run {run} of {runs}")
                return False
        print(f"{name}: {runs}/{runs} runs failed")
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("-n", "--runs", type=int, default=10, help="runs per mutation")
    args = parser.parse_args()
    mutations = json.loads(SPEC.read_text())
    unknown = [name for name in args.names if name not in mutations]
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; known: {', '.join(mutations)}")
    results = [run_one(name, mutations[name], args.runs) for name in args.names or mutations]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
