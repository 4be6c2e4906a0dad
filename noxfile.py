"""The compatibility matrix: the whole test suite on every supported Python x IPython x
ipykernel x traitlets x jupyter_client combination, one uv-built venv per combination.

`make test-matrix` runs it (it installs nox and uv into .venv first); .ci/run calls that
after `make test`. By hand, with nox from .venv:

    .venv/bin/nox                          # every combination, then the results table
    .venv/bin/nox -- -k magics             # pytest arguments (the table is left alone)
    .venv/bin/nox -s "tests(py3.12)"       # one combination (the table is left alone)
    .venv/bin/nox -l                       # list them

The default session, `matrix`, runs the `tests` sessions MATRIX_JOBS (default 2) at a
time, each as its own nox process with its output in .nox/results/NAME.log, printed when
it ends; one test run keeps about one core busy, so two fill a 2-core machine. Venvs live
in .nox/ and are reused: uv re-checks the pins on each run (about a second when nothing
changed). Interpreters come from pyenv when it is there (its versions/X.Y.*/bin go first on
PATH), else from PATH; nothing is downloaded. Each combination writes its JUnit XML and
installed versions to .nox/results/, and `matrix` turns them into .ci/matrix-results.md
(the README links it). The dev venv's `make test` run adds a row when MATRIX_DEV_JUNIT
names its JUnit file (.ci/run does).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / ".nox" / "results"
RESULTS_MD = ROOT / ".ci" / "matrix-results.md"

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.download_python = "never"  # a missing interpreter fails its session instead
nox.needs_version = ">=2025.2.9"

# id -> (Python, pins). With no pins the resolver picks the newest IPython and ipykernel
# that this Python accepts. Python 3.11 with the newest of everything is the dev venv,
# tested by `make test`; Python 3.10 is no longer supported (end of life, October 2026).
COMBINATIONS: dict[str, tuple[str, list[str]]] = {
    "py3.12": ("3.12", []),
    "py3.13": ("3.13", []),
    # Google Colab (and Kaggle, built on its image): the kernel-side packages exactly as
    # pip-freeze.txt in the public repository googlecolab/backend-info lists them
    # (2026-08; its os-info.txt gave Python 3.12.13 until 2026-08-19, 3.13 since), the
    # archived nest-asyncio included because it comes preinstalled there. One exception:
    # jupyter_client floats (>= 8; Colab has 7.4.9). Colab's kernel does not need it to
    # talk to Colab's front end, but the test harness does, and jupyter_client 7's
    # blocking client applies the archived nest_asyncio to the test process's own asyncio
    # (its run_sync), which every in-process test after the first kernel would then run on.
    # These pins are also the floors pyproject.toml's extras declare, so they stay true.
    "colab": (
        "3.12",
        [
            "ipython==7.34.0",
            "ipykernel==6.17.1",
            "jupyter-client>=8",
            "traitlets==5.7.1",
            "tornado==6.5.7",
            "pyzmq==26.2.1",
            "jupyter-core==5.9.1",
            "nest-asyncio==1.6.0",
        ],
    ),
    # Databricks notebooks (SPEC.md "Where it must work").
    "databricks": ("3.12", ["ipython==8.30.*", "ipykernel==6.29.5"]),
    # The current releases (python-unstable on machines without them, see .ci/run).
    "py3.14": ("3.14", []),
    "py3.15": ("3.15", []),
}
# pytest runs all of tests/ and skips nothing on purpose, and the notebooks through nbval
# too, in every combination (list one here only where stored outputs cannot match).
WITHOUT_NOTEBOOKS: set[str] = set()
REPORTED = ("ipython", "ipykernel", "jupyter-client", "traitlets", "nest-asyncio2")
VERSIONS_AS_JSON = (
    "import json, platform, importlib.metadata as m\n"
    f"v = {{n: m.version(n) for n in {list(REPORTED)!r}}}\n"
    "v['python'] = platform.python_version()\n"
    "print(json.dumps(v))\n"
)


def _put_pyenv_pythons_on_path() -> None:
    """pyenv's shims refuse versions that are not selected; its real binaries do not."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    try:
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30)
        roots.insert(0, found.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    bins: list[str] = []
    for minor in sorted({python for python, _ in COMBINATIONS.values()}):
        for root in filter(None, roots):
            versions = sorted(
                Path(root, "versions").glob(f"{minor}.*/bin/python{minor}"),
                key=lambda path: [int(p) for p in path.parts[-3].split(".") if p.isdigit()],
            )
            if versions:
                bins.append(str(versions[-1].parent))  # the newest patch release
                break
    os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_put_pyenv_pythons_on_path()


@nox.session(default=False)
@nox.parametrize(
    ("python", "combination"),
    [nox.param(python, name, id=name) for name, (python, _) in COMBINATIONS.items()],
)
def tests(session: nox.Session, combination: str) -> None:
    """The test suite (and the notebooks, but in WITHOUT_NOTEBOOKS) in one combination."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    junit = RESULTS / f"{combination}.junit.xml"
    versions = RESULTS / f"{combination}.json"
    for stale in (junit, versions):
        stale.unlink(missing_ok=True)
    # pip: tests/test_packaging.py installs the built dists with it.
    session.install("-e", ".[test]", "pip", *COMBINATIONS[combination][1])
    versions.write_text(str(session.run("python", "-c", VERSIONS_AS_JSON, silent=True)))
    # A basetemp of its own: another combination may run its pytest at the same time.
    basetemp = f"--basetemp={session.create_tmp()}/pytest"
    args = ["-p", "no:cacheprovider", basetemp, f"--junitxml={junit}", "tests"]
    if combination not in WITHOUT_NOTEBOOKS:
        args += ["--nbval", "--nbval-current-env", "notebooks"]
    session.run("python", "-m", "pytest", *args, *session.posargs)


@nox.session(python=False)
def matrix(session: nox.Session) -> None:
    """Every combination, MATRIX_JOBS at a time, then .ci/matrix-results.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    jobs = int(os.environ.get("MATRIX_JOBS", "2"))
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        running = [pool.submit(_run_combination, name, session.posargs) for name in COMBINATIONS]
        failed = []
        for done in as_completed(running):
            name, code, seconds, log = done.result()
            print(log.read_text(), flush=True)
            session.log(f"tests({name}): {'FAIL' if code else 'PASS'} in {seconds:.0f} s")
            if code:
                failed.append(name)
    if not session.posargs:  # the table describes full runs only
        _write_results()
    if failed:
        session.error(f"failed: {', '.join(failed)}")


def _run_combination(name: str, posargs: list[str]) -> tuple[str, int, float, Path]:
    """``nox -s "tests(NAME)"`` in a process of its own, its output to a log file."""
    log = RESULTS / f"{name}.log"
    started = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "nox", "-f", __file__, "-s", f"tests({name})", "--", *posargs],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        ).returncode
    return name, code, time.monotonic() - started, log


def _write_results() -> None:
    """Write .ci/matrix-results.md from every combination's JUnit XML and versions."""
    rows = []
    dev_junit = os.environ.get("MATRIX_DEV_JUNIT")
    if dev_junit:
        rows.append(_row(".venv (make test, with notebooks)", Path(dev_junit), None))
    for name in COMBINATIONS:
        rows.append(_row(name, RESULTS / f"{name}.junit.xml", RESULTS / f"{name}.json"))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"Compatibility matrix as last run by `make test-matrix` "
        f"({datetime.date.today().isoformat()}, commit {commit or '?'}, Linux x86_64). "
        f"Tests: all of tests/, and the notebooks through nbval"
        + (f" except in {', '.join(sorted(WITHOUT_NOTEBOOKS))}." if WITHOUT_NOTEBOOKS else "."),
        "",
        "| venv | Python | IPython | ipykernel | jupyter_client | traitlets | nest-asyncio2 "
        "| tests |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    RESULTS_MD.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS_MD.relative_to(ROOT)}", flush=True)


def _row(name: str, junit: Path, versions_file: Path | None) -> str:
    """One table row: the versions installed and the counts from pytest's JUnit XML."""
    if versions_file is None:  # the dev venv: ask it
        out = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-c", VERSIONS_AS_JSON],
            capture_output=True,
            text=True,
        )
        versions = json.loads(out.stdout) if out.returncode == 0 else {}
    elif versions_file.exists():
        versions = json.loads(versions_file.read_text())
    else:
        versions = {}
    cells = [versions.get(key, "?") for key in ("python", *REPORTED)]
    return f"| {name} | {' | '.join(cells)} | {_outcome(junit)} |"


def _outcome(junit: Path) -> str:
    """'N passed, N failed, N skipped' from a pytest JUnit XML file."""
    if not junit.exists():
        return "no results (install failed or not run)"
    passed = failed = skipped = 0
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        failed, skipped = failed + bad, skipped + skip
        passed += int(suite.get("tests", 0)) - bad - skip
    return f"{passed} passed, {failed} failed, {skipped} skipped"
