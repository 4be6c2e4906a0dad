"""Run the test suite on every supported Python x IPython x ipykernel combination.

Called by `make test-matrix` (and by .ci/run after `make test`). For each combination it
builds a venv under .venv-matrix/NAME with `pip install -e '.[test]'` plus the combination's
pins, then runs pytest on the whole tests/ directory in it. A venv is reused while
pyproject.toml, the pins and the interpreter are unchanged (a stamp file holds their hash),
so only the first run on a machine pays for the installs.

Standard library only; runs with any Python >= 3.8. Prints one summary line per
combination, writes .ci/matrix-results.md (a table the README includes) and exits non-zero
if any combination failed to install or had a failing test.

    python3 .ci/matrix.py                 # all combinations
    python3 .ci/matrix.py py3.12 py3.13   # only these
    python3 .ci/matrix.py --list
    python3 .ci/matrix.py --no-notebooks  # tests/ only, no nbval run of notebooks/
    python3 .ci/matrix.py --make-test-junit .venv-matrix/make-test.junit.xml
                                          # add a row for the dev .venv from that run
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venv-matrix"
RESULTS_MD = ROOT / ".ci" / "matrix-results.md"

# name -> (Python minor version, extra pip requirements). With no pins pip picks the newest
# IPython and ipykernel that this Python accepts (IPython 9 needs >= 3.11, so 3.10 gets 8.x).
# Python 3.11 with the newest of both is the dev venv, tested by `make test`.
COMBINATIONS: dict[str, tuple[str, list[str]]] = {
    "py3.10": ("3.10", []),
    "py3.10-ipy8-k6": ("3.10", ["ipython>=8.12,<9", "ipykernel>=6.29,<7"]),
    # The lower bounds pyproject.toml declares, so they stay true.
    "py3.10-floor": (
        "3.10",
        ["ipython==8.12.*", "ipykernel==6.29.*", "traitlets==5.9.*", "jupyter-client==8.0.*"],
    ),
    "py3.12": ("3.12", []),
    "py3.13": ("3.13", []),
}

# pytest runs all of tests/ and skips nothing on purpose, and the notebooks through nbval
# too, except where their stored outputs cannot match: traitlets 5.9 words the
# `%config AsyncBridge` help differently.
PYTEST_ARGS = ["-p", "no:cacheprovider", "tests"]
NOTEBOOK_ARGS = ["--nbval", "--nbval-current-env", "notebooks"]
WITHOUT_NOTEBOOKS = {"py3.10-floor"}

REPORTED = ("ipython", "ipykernel", "jupyter-client", "traitlets", "nest-asyncio2")


def log(message: str) -> None:
    print(f"[matrix] {message}", flush=True)


def find_python(minor: str) -> str | None:
    """The interpreter for Python `minor` ("3.12"): pyenv's newest patch release, else PATH."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if pyenv:
        for args in (["root"], ["prefix", minor]):
            out = subprocess.run([pyenv, *args], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                path = out.stdout.strip().splitlines()[-1]
                if args == ["root"]:
                    roots.insert(0, path)
                else:
                    candidates.append(f"{path}/bin/python{minor}")
    for root in filter(None, roots):
        found = glob.glob(f"{root}/versions/{minor}.*/bin/python{minor}")
        found.sort(key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()])
        candidates.extend(reversed(found))
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == minor:
            return candidate
    return None


def stamp_for(python: str, pins: list[str]) -> str:
    """What the venv was built from: pyproject.toml, the pins, the interpreter's version."""
    version = subprocess.run([python, "-VV"], capture_output=True, text=True).stdout
    digest = hashlib.sha256()
    for part in (
        (ROOT / "pyproject.toml").read_bytes(),
        json.dumps(pins).encode(),
        python.encode(),
    ):
        digest.update(part + b"\0")
    digest.update(version.encode())
    return digest.hexdigest()


def build_venv(name: str, python: str, pins: list[str]) -> tuple[bool, float, str]:
    """Create or reuse .venv-matrix/NAME. Returns (ok, seconds, note); pip output to a log."""
    venv = VENVS / name
    stamp_file = venv / ".matrix-stamp"
    stamp = stamp_for(python, pins)
    if stamp_file.exists() and stamp_file.read_text() == stamp and (venv / "bin/python").exists():
        return True, 0.0, "reused"
    started = time.monotonic()
    stamp_file.unlink(missing_ok=True)
    logfile = VENVS / f"{name}.install.log"
    with open(logfile, "w") as out:
        steps = [
            [python, "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", "-e", ".[test]", *pins],
        ]
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
            if subprocess.run(
                step, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env
            ).returncode:
                return False, time.monotonic() - started, f"install failed, see {logfile}"
    stamp_file.write_text(stamp)
    return True, time.monotonic() - started, "built"


def installed_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, platform, importlib.metadata as m\n"
        f"names = {list(REPORTED)!r}\n"
        "v = {n: m.version(n) for n in names}\n"
        "v['python'] = platform.python_version()\n"
        "print(json.dumps(v))\n"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def junit_counts(path: Path) -> dict[str, int]:
    """passed / failed / errors / skipped from a pytest JUnit XML file."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    if not path.exists():
        return counts
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        failed, errors = int(suite.get("failures", 0)), int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        counts["failed"] += failed
        counts["errors"] += errors
        counts["skipped"] += skipped
        counts["passed"] += tests - failed - errors - skipped
    return counts


def run_tests(name: str, notebooks: bool) -> tuple[int, float, dict[str, int]]:
    """pytest on tests/ in the combination's venv; its output goes straight to ours."""
    venv = VENVS / name
    junit = venv / "junit.xml"
    junit.unlink(missing_ok=True)
    args = PYTEST_ARGS + (NOTEBOOK_ARGS if notebooks else [])
    log(f"{name}: pytest {' '.join(args)}")
    started = time.monotonic()
    code = subprocess.run(
        [str(venv / "bin/python"), "-m", "pytest", *args, f"--junitxml={junit}"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
    ).returncode
    return code, time.monotonic() - started, junit_counts(junit)


def make_test_row(junit: Path) -> dict[str, object]:
    """The dev venv (.venv, Python 3.11, newest IPython/ipykernel) as `make test` ran it."""
    counts = junit_counts(junit)
    bad = counts["failed"] + counts["errors"]
    outcome = f"{counts['passed']} passed, {bad} failed, {counts['skipped']} skipped"
    if not junit.exists():
        outcome = f"no results: {junit} is missing"
    return {
        "name": ".venv (make test, with notebooks)",
        "python": "3.11",
        "versions": installed_versions(ROOT / ".venv/bin/python"),
        "ok": junit.exists() and bad == 0,
        "outcome": outcome,
        "seconds": 0.0,
    }


def write_results(rows: list[dict[str, object]]) -> None:
    today = datetime.date.today().isoformat()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"Compatibility matrix as last run by `make test-matrix` ({today}, commit "
        f"{commit or '?'}, Linux x86_64). Tests: all of tests/, and the notebooks through "
        f"nbval except in {', '.join(sorted(WITHOUT_NOTEBOOKS))}.",
        "",
        "| venv | Python | IPython | ipykernel | jupyter_client | traitlets | nest-asyncio2 "
        "| tests |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        v = row["versions"]
        assert isinstance(v, dict)
        lines.append(
            f"| {row['name']} | {v.get('python', row['python'])} | {v.get('ipython', '?')} | "
            f"{v.get('ipykernel', '?')} | {v.get('jupyter-client', '?')} | "
            f"{v.get('traitlets', '?')} | {v.get('nest-asyncio2', '?')} | {row['outcome']} |"
        )
    RESULTS_MD.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="combinations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the combinations and exit")
    parser.add_argument(
        "--install-jobs", type=int, default=2, help="venvs built at once (default 2)"
    )
    parser.add_argument(
        "--no-notebooks", action="store_true", help="do not run notebooks/ (nbval) anywhere"
    )
    parser.add_argument(
        "--make-test-junit",
        type=Path,
        metavar="XML",
        help="JUnit XML of `make test` (dev .venv): reported as one more row",
    )
    args = parser.parse_args()
    if args.list:
        for name, (minor, pins) in COMBINATIONS.items():
            print(name, minor, " ".join(pins) or "(newest)")
        return 0
    unknown = [n for n in args.names if n not in COMBINATIONS]
    if unknown:
        parser.error(f"unknown combination(s) {unknown}; choose from {list(COMBINATIONS)}")
    names = args.names or list(COMBINATIONS)
    VENVS.mkdir(exist_ok=True)
    total_started = time.monotonic()

    pythons = {name: find_python(COMBINATIONS[name][0]) for name in names}
    for name, python in pythons.items():
        log(f"{name}: Python {COMBINATIONS[name][0]} -> {python or 'NOT FOUND'}")

    # Installs wait mostly on the network and on unpacking: build them two at a time.
    builds: dict[str, tuple[bool, float, str]] = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, args.install_jobs)) as pool:
        futures = {
            pool.submit(build_venv, name, python, COMBINATIONS[name][1]): name
            for name, python in pythons.items()
            if python is not None
        }
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            builds[name] = future.result()
            log(f"{name}: venv {builds[name][2]} ({builds[name][1]:.0f} s)")

    # Tests run one combination at a time: they start real kernels and time interrupts.
    rows: list[dict[str, object]] = []
    for name in names:
        minor, pins = COMBINATIONS[name]
        row: dict[str, object] = {"name": name, "python": minor, "versions": {}}
        if pythons[name] is None:
            row.update(ok=False, outcome=f"Python {minor} not found", seconds=0.0)
        elif not builds[name][0]:
            row.update(ok=False, outcome=builds[name][2], seconds=builds[name][1])
        else:
            row["versions"] = installed_versions(VENVS / name / "bin/python")
            notebooks = not args.no_notebooks and name not in WITHOUT_NOTEBOOKS
            code, seconds, counts = run_tests(name, notebooks)
            bad = counts["failed"] + counts["errors"]
            outcome = f"{counts['passed']} passed, {bad} failed, {counts['skipped']} skipped"
            row.update(ok=code == 0 and bad == 0, outcome=outcome, seconds=seconds)
            if code != 0 and bad == 0:
                row["outcome"] = f"{outcome} (pytest exit code {code})"
        rows.append(row)
    if args.make_test_junit:
        rows.insert(0, make_test_row(args.make_test_junit))

    log("summary")
    for row in rows:
        v = row["versions"]
        assert isinstance(v, dict)
        timing = ""
        if row["name"] in builds:
            timing = (
                f"  (install {builds[str(row['name'])][1]:.0f} s, tests {row['seconds']:.0f} s)"
            )
        print(
            f"{'PASS' if row['ok'] else 'FAIL'} {row['name']:<16} "
            f"Python {v.get('python', row['python'])}  IPython {v.get('ipython', '?')}  "
            f"ipykernel {v.get('ipykernel', '?')}  jupyter_client {v.get('jupyter-client', '?')}"
            f": {row['outcome']}{timing}",
            flush=True,
        )
    if not args.names:
        write_results(rows)
        log(f"wrote {RESULTS_MD.relative_to(ROOT)}")
    log(f"total {time.monotonic() - total_started:.0f} s")
    failed = [str(row["name"]) for row in rows if not row["ok"]]
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
