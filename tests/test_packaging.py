"""The built distributions: a wheel and an sdist that install into a fresh venv and work.

Both are built without build isolation (hatchling and build come with the test extra) and
installed without dependencies: the fresh venv sees the test environment's packages
through a .pth file, so nothing is downloaded and each test takes seconds.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile

import pytest

import asyncbridge_ext

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = asyncbridge_ext.__version__

# What the sdist carries (pyproject.toml, [tool.hatch.build.targets.sdist]): the package
# and its config fragment, plus what a downstream packager needs to run the tests.
SDIST_TREES = ("asyncbridge_ext", "jupyter-config", "tests", "notebooks")
SDIST_FILES = {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", ".gitignore", "PKG-INFO"}
SDIST_LEFT_OUT = (".ci/", "Makefile", "noxfile.py", "benchmarks/results/", ".venv", ".nox")

# Loads the extension in a real IPython shell and runs both magics' core path.
USE_IT = """
import asyncio, asyncbridge_ext, importlib.metadata
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "asyncbridge_ext")
shell.run_cell("import asyncio")
print(shell.run_line_magic("run_async", "asyncio.sleep(0, result=42)"))
print(asyncbridge_ext.__file__)
print(importlib.metadata.version("asyncbridge-ext"))
"""


def build(kind: str, out: pathlib.Path) -> pathlib.Path:
    """``python -m build --<kind>`` of the source tree into ``out``; the one file it made."""
    subprocess.run(
        [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (made,) = out.iterdir()
    return made


def fresh_venv(where: pathlib.Path) -> pathlib.Path:
    """A venv with nothing installed that can import the test environment's packages."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Appended after the venv's own site-packages, so its own asyncbridge_ext wins.
    pathlib.Path(site, "test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def pip_install(python: pathlib.Path, what: pathlib.Path) -> None:
    offline = ["-q", "--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", *offline, str(what)],
        check=True,
        timeout=240,
    )


def check_installed_copy_works(python: pathlib.Path, env_dir: pathlib.Path) -> None:
    """The installed copy (not the source tree) loads in IPython and enables itself."""
    cwd = env_dir.parent  # the source tree is not importable from here
    used = subprocess.run(
        [str(python), "-c", USE_IT], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    assert used.returncode == 0, used.stdout + used.stderr
    result, where, version = used.stdout.splitlines()[-3:]
    assert result == "42"
    assert where.startswith(str(env_dir))
    assert version == VERSION == importlib.metadata.version("asyncbridge-ext")

    prefix = cwd / "prefix"
    done = subprocess.run(
        [str(python), "-m", "asyncbridge_ext", "enable", "--prefix", str(prefix)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = (prefix / "etc" / "ipython" / "ipython_config.py").read_text()
    fragment = (ROOT / "jupyter-config" / "ipython_config_fragment.py").read_text()
    assert 'c.InteractiveShellApp.extensions.append("asyncbridge_ext")' in written
    assert fragment.strip() in written  # read from the installed package's jupyter-config/


@pytest.mark.timeout(300)
def test_wheel_installs_a_working_package_with_its_config_fragment(
    tmp_path: pathlib.Path,
) -> None:
    wheel = build("wheel", tmp_path / "dist")
    assert wheel.name == f"asyncbridge_ext-{VERSION}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "asyncbridge_ext/py.typed" in names
    assert "asyncbridge_ext/jupyter-config/ipython_config_fragment.py" in names
    assert f"asyncbridge_ext-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not any(name.startswith(("tests/", "notebooks/")) for name in names)

    env_dir = tmp_path / "venv"
    python = fresh_venv(env_dir)
    pip_install(python, wheel)
    check_installed_copy_works(python, env_dir)


def source_files(tree: str) -> set[str]:
    """Files under ``tree`` in the source checkout, as the sdist names them."""
    return {
        str(path.relative_to(ROOT))
        for path in (ROOT / tree).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and ".ipynb_checkpoints" not in path.parts
    }


@pytest.mark.timeout(300)
def test_sdist_holds_the_package_tests_and_notebooks_and_pip_install_from_it_works(
    tmp_path: pathlib.Path,
) -> None:
    sdist = build("sdist", tmp_path / "dist")
    assert sdist.name == f"asyncbridge_ext-{VERSION}.tar.gz"
    top = f"asyncbridge_ext-{VERSION}"
    with tarfile.open(sdist) as archive:
        members = {name.removeprefix(f"{top}/") for name in archive.getnames()}
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12
            archive.extractall(tmp_path, filter="data")
        else:  # pragma: no cover - older patch releases
            archive.extractall(tmp_path)
    files = {name for name in members if (tmp_path / top / name).is_file()}

    expected = set(SDIST_FILES)
    for tree in SDIST_TREES:
        expected |= source_files(tree)
    expected |= {f"benchmarks/{path.name}" for path in (ROOT / "benchmarks").glob("*.py")}
    assert files == expected
    assert not [name for name in files if name.startswith(SDIST_LEFT_OUT)]
    pkg_info = (tmp_path / top / "PKG-INFO").read_text()
    assert f"Version: {VERSION}" in pkg_info
    assert "License-Expression: BSD-3-Clause" in pkg_info
    assert "Project-URL: Changelog, " in pkg_info

    # A downstream packager's steps: `pip install .` in the unpacked sdist, then its tests.
    env_dir = tmp_path / "venv"
    python = fresh_venv(env_dir)
    pip_install(python, tmp_path / top)
    check_installed_copy_works(python, env_dir)
    collected = subprocess.run(
        [str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=tmp_path / top,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "tests/test_packaging.py::test_sdist_holds" in collected.stdout
