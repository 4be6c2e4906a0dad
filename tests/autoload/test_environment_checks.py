"""Known-bad installs found without a kernel: the checks and ``python -m asyncbridge_ext status``.

"Installed" is what importlib.metadata finds, so a directory holding a distribution's
``*.dist-info/METADATA`` is an installed distribution to it, exactly as pip leaves one.
The status test makes a real venv whose own site-packages holds such an old
nest-asyncio2 and the archived nest_asyncio, ahead of this environment's packages.
"""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import pytest

from asyncbridge_ext.core.environment import (
    installed_version,
    nest_library_findings,
    nest_library_versions,
    version_tuple,
)
from support.cli_helpers import make_prefix_env


def install_metadata(site: Path, distribution: str, version: str) -> None:
    """What pip leaves for ``distribution`` (the part importlib.metadata reads)."""
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n", encoding="utf-8"
    )


def test_an_old_nest_asyncio2_is_a_known_bad_version(tmp_path: Path) -> None:
    install_metadata(tmp_path, "nest-asyncio2", "1.7.2")
    (finding,) = nest_library_findings([str(tmp_path)])
    assert finding.problem.startswith("nest-asyncio2 1.7.2 is installed; versions before 1.7.3")
    assert "pip install --upgrade 'nest-asyncio2>=1.7.3'" in finding.fix


@pytest.mark.parametrize("version", ["1.7.3", "1.7.4", "1.10.0"])
def test_a_fixed_nest_asyncio2_alone_is_fine(tmp_path: Path, version: str) -> None:
    install_metadata(tmp_path, "nest-asyncio2", version)
    assert nest_library_findings([str(tmp_path)]) == []
    assert nest_library_versions([str(tmp_path)]) == [
        f"nest-asyncio2: {version}",
        "nest_asyncio: not installed",
    ]


def test_the_archived_library_installed_is_reported_as_harmless_until_applied(
    tmp_path: Path,
) -> None:
    install_metadata(tmp_path, "nest-asyncio2", "1.7.4")
    install_metadata(tmp_path, "nest-asyncio", "1.6.0")
    (finding,) = nest_library_findings([str(tmp_path)])
    assert "the archived nest_asyncio 1.6.0 is installed. It is harmless unless" in finding.problem
    assert "python -m asyncbridge_ext enable" in finding.fix


def test_a_missing_nest_asyncio2_says_how_to_install_it(tmp_path: Path) -> None:
    (finding,) = nest_library_findings([str(tmp_path)])
    assert "nest-asyncio2 is not installed" in finding.problem
    assert installed_version("nest-asyncio2", [str(tmp_path)]) is None


def test_status_in_a_venv_with_an_old_and_an_archived_library(tmp_path: Path) -> None:
    python = make_prefix_env(tmp_path / "env")
    site = Path(sysconfig.get_path("purelib", vars={"base": str(tmp_path / "env")}))
    install_metadata(site, "nest-asyncio2", "1.7.2")
    install_metadata(site, "nest-asyncio", "1.6.0")
    result = subprocess.run(
        [str(python), "-m", "asyncbridge_ext", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"IPYTHONDIR": str(tmp_path / "ipython"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  nest-asyncio2: 1.7.2" in lines
    assert "  nest_asyncio: 1.6.0 (archived upstream)" in lines
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 2, result.stdout
    assert "nest-asyncio2 1.7.2 is installed; versions before 1.7.3 drop" in warnings[0]
    assert "the archived nest_asyncio 1.6.0 is installed" in warnings[1]
    assert lines[-1] == warnings[-1], "warnings come last"


def test_the_version_first_on_the_path_is_the_one_checked(tmp_path: Path) -> None:
    """Two copies installed (a venv and a user site): the first on the path is the one
    ``import nest_asyncio2`` gets, so its version is the one that counts."""
    fixed, old = tmp_path / "first", tmp_path / "second"
    install_metadata(fixed, "nest-asyncio2", "1.7.4")
    install_metadata(old, "nest-asyncio2", "1.7.2")
    assert nest_library_findings([str(fixed), str(old)]) == []
    found = nest_library_findings([str(old), str(fixed)])
    assert [f.problem.split(" is installed")[0] for f in found] == ["nest-asyncio2 1.7.2"]


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("1.7.4", (1, 7, 4)),
        ("6.17.1", (6, 17, 1)),
        ("1.7.3rc1", (1, 7, 3)),
        ("1.7.2rc1", (1, 7, 2)),  # a pre-release of the broken 1.7.2 is still older than 1.7.3
        ("1.7.2.post1", (1, 7, 2)),
        ("1.7.2+local", (1, 7, 2)),
        ("1.10", (1, 10)),
        ("unknown", (0,)),
    ],
)
def test_a_version_reads_as_its_release_numbers(version: str, release: tuple[int, ...]) -> None:
    assert version_tuple(version) == release
    assert (version_tuple(version) >= (1, 7, 3)) == (release >= (1, 7, 3))
