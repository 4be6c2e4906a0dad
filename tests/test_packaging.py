"""A non-editable `pip install .` gives a complete package: code, py.typed, config fragment."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import venv
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_wheel_installs_a_working_package_with_its_config_fragment(
    tmp_path: pathlib.Path,
) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        timeout=240,
    )
    (wheel,) = wheels.glob("asyncbridge_ext-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "asyncbridge_ext/py.typed" in names
    assert "asyncbridge_ext/jupyter-config/ipython_config_fragment.py" in names

    # Install it, without dependencies, into a venv that sees the test environment's
    # packages, and use it from a directory where the source tree is not importable.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, system_site_packages=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    prefix = tmp_path / "prefix"
    done = subprocess.run(
        [str(python), "-m", "asyncbridge_ext", "enable", "--prefix", str(prefix)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.run(
        [str(python), "-c", "import asyncbridge_ext; print(asyncbridge_ext.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout
    assert str(env_dir) in where  # the installed copy, not the source tree
    written = (prefix / "etc" / "ipython" / "ipython_config.py").read_text()
    assert 'c.InteractiveShellApp.extensions.append("asyncbridge_ext")' in written
