"""The argv front: ``python -m asyncbridge_ext enable|disable|status``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncbridge_ext.autoload import cli
from asyncbridge_ext.autoload.enable import EXTENSION
from support.cli_helpers import kernel_env, terminal_loaded_extensions, write_user_extensions


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """IPYTHONDIR and sys.prefix pointed at temporary directories for the whole test."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "env"))
    return {
        "profile": tmp_path / "ipython" / "profile_default",
        "env": tmp_path / "env" / "etc" / "ipython",
        "tmp": tmp_path,
    }


def test_enable_user_prints_file_and_disable_undoes(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    py = dirs["profile"] / "ipython_config.py"
    assert cli.main(["enable", "--user"]) == 0
    out = capsys.readouterr().out
    assert f"{py}: created with c.InteractiveShellApp.extensions.append('{EXTENSION}')" in out
    assert f"Jupyter kernels: {EXTENSION} loads at start-up." in out
    assert py.is_file()

    assert cli.main(["enable", "--user"]) == 0
    assert (
        f"{EXTENSION} was already enabled in {dirs['profile']} (--user)" in capsys.readouterr().out
    )

    assert cli.main(["disable", "--user"]) == 0
    out = capsys.readouterr().out
    assert f"{py}: deleted" in out
    assert f"terminal IPython: {EXTENSION} does not load at start-up." in out
    assert not py.exists()


@pytest.mark.parametrize(
    ("argv", "in_venv", "where"),
    [
        (["enable", "--sys-prefix"], False, "env"),
        (["enable"], True, "env"),  # default inside a virtual env: this env only
        (["enable"], False, "profile"),  # default elsewhere: the user's profile
    ],
)
def test_target_choice(
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    in_venv: bool,
    where: str,
) -> None:
    monkeypatch.setattr(cli, "in_virtual_env", lambda: in_venv)
    assert cli.main(argv) == 0
    written = [p.parent for p in dirs["tmp"].rglob("ipython_config.py")]
    assert written == [dirs[where]]


def test_prefix_option_targets_that_env(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    other = dirs["tmp"] / "other-env"
    assert cli.main(["enable", "--prefix", str(other)]) == 0
    assert (other / "etc" / "ipython" / "ipython_config.py").is_file()
    assert str(other / "etc" / "ipython" / "ipython_config.py") in capsys.readouterr().out


def test_malformed_json_exit_1_file_untouched(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dirs["env"].mkdir(parents=True)
    bad = dirs["env"] / "ipython_config.json"
    bad.write_bytes(b'{"InteractiveShellApp": {"extensions": ["a",]}}')
    assert cli.main(["enable", "--sys-prefix"]) == 1
    err = capsys.readouterr().err
    assert f"error: {bad} is not valid JSON" in err
    assert "fix or remove it" in err
    assert bad.read_bytes() == b'{"InteractiveShellApp": {"extensions": ["a",]}}'
    assert sorted(p.name for p in dirs["env"].iterdir()) == ["ipython_config.json"]


def test_unwritable_sys_prefix_suggests_user(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # root bypasses permission bits, so block the directory with a file instead
    (dirs["tmp"] / "env").mkdir()
    (dirs["tmp"] / "env" / "etc").write_text("a file, not a directory", encoding="utf-8")
    assert cli.main(["enable", "--sys-prefix"]) == 1
    err = capsys.readouterr().err
    assert f"error: cannot write {dirs['env'] / 'ipython_config.py'}" in err
    assert "use --user" in err


def test_unwritable_profile_suggests_ipythondir_or_sys_prefix(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (dirs["tmp"] / "ipython").write_text("a file, not a directory", encoding="utf-8")
    assert cli.main(["disable", "--user"]) == 0  # nothing to undo: reading is fine
    assert cli.main(["enable", "--user"]) == 1
    err = capsys.readouterr().err
    assert "point IPYTHONDIR elsewhere" in err
    assert "--sys-prefix" in err


def test_status_lists_locations_files_effective_lists_and_masking(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dirs["env"].mkdir(parents=True)
    env_json = {"InteractiveShellApp": {"extensions": ["userext_a"]}}
    (dirs["env"] / "ipython_config.json").write_text(json.dumps(env_json), encoding="utf-8")
    assert cli.main(["enable", "--sys-prefix"]) == 0
    masking = dirs["profile"] / "ipython_kernel_config.py"
    masking.parent.mkdir(parents=True)
    masking.write_text("c.InteractiveShellApp.extensions = ['userext_c']\n", encoding="utf-8")
    capsys.readouterr()

    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = out[out.index(next(line for line in out if line.startswith("Config dir"))) + 1 :][:4]
    assert [Path(line.strip()) for line in listed][-2:] == [dirs["env"], dirs["profile"]]
    assert f"  {dirs['env'] / 'ipython_config.json'}: {EXTENSION} enabled here" in out
    assert f"      InteractiveShellApp.extensions = ['userext_a', '{EXTENSION}']" in out
    assert f"  {masking}: no {EXTENSION}" in out
    assert (
        f"terminal IPython: {EXTENSION} loads; extensions: storemagic, userext_a, {EXTENSION}"
        in out
    )
    assert f"Jupyter kernels: {EXTENSION} NOT loaded; extensions: storemagic, userext_c" in out
    # (the nest-library warnings, about what is installed here, are tested elsewhere)
    [warning] = [line for line in out if line.startswith("warning:") and "nest" not in line]
    assert str(masking) in warning
    assert "Jupyter kernels will not load" in warning


def test_status_reports_broken_file_and_exits_1(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dirs["profile"].mkdir(parents=True)
    (dirs["profile"] / "ipython_config.py").write_text("raise RuntimeError('boom')\n", "utf-8")
    assert cli.main(["status"]) == 1
    assert "ERROR RuntimeError: boom" in capsys.readouterr().out


def test_help_names_targets_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["enable", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--user" in text
    assert "--sys-prefix" in text
    assert "Default: --sys-prefix inside a virtualenv or conda env, else --user." in text
    with pytest.raises(SystemExit) as info:
        cli.main(["enable", "--user", "--sys-prefix"])
    assert info.value.code == 2


def test_python_m_enable_user_then_terminal_ipython_loads_it(tmp_path: Path) -> None:
    extensions = write_user_extensions(tmp_path / "extensions")
    env = kernel_env(tmp_path / "ipython", extensions)
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.json").write_text(
        json.dumps({"TerminalIPythonApp": {"extra_extensions": ["userext_b"]}}), "utf-8"
    )
    command = [sys.executable, "-m", "asyncbridge_ext", "enable", "--user"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{profile / 'ipython_config.py'}: created with" in result.stdout
    loaded = terminal_loaded_extensions(env)
    assert loaded == {"IPython.extensions.storemagic", EXTENSION, "userext_b"}
