"""enable()/disable() on a config directory, and the status computation, without kernels."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from asyncbridge_ext.autoload.enable import (
    EXTENSION,
    ConfigFileError,
    ConfigWriteError,
    disable,
    enable,
    fragment_text,
)
from asyncbridge_ext.autoload.status import (
    config_dirs,
    effective_extensions,
    masking_warnings,
    read_config_files,
)

REPO = Path(__file__).resolve().parents[2]
USER_PY = (
    "# my settings\n"
    "c.InteractiveShellApp.exec_lines = ['marker = 42']\n"
    "c.InteractiveShellApp.extensions = ['userext_a', 'IPython.extensions.autoreload']\n"
    "c.InteractiveShell.colors = 'nocolor'"  # no trailing newline on purpose
)
APPEND_B = "c.InteractiveShellApp.extensions.append('userext_b')"
USER_JSON = {
    "InteractiveShellApp": {"extensions": ["userext_a"], "exec_lines": ["marker = 42"]},
    "InteractiveShell": {"colors": "nocolor"},
}


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")


def test_fragment_is_the_shipped_jupyter_config_file() -> None:
    shipped = (REPO / "jupyter-config" / "ipython_config_fragment.py").read_text(encoding="utf-8")
    assert fragment_text() == shipped
    assert f'c.InteractiveShellApp.extensions.append("{EXTENSION}")' in shipped


def test_enable_in_empty_dir_creates_py_and_disable_removes_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "etc" / "ipython"
    changes = enable(target)
    assert changes == [
        f"{target / 'ipython_config.py'}: created with "
        f"c.InteractiveShellApp.extensions.append({EXTENSION!r})"
    ]
    assert (target / "ipython_config.py").read_text(encoding="utf-8") == fragment_text()
    assert sorted(p.name for p in target.iterdir()) == ["ipython_config.py"]  # no temp files
    assert disable(target) == [
        f"{target / 'ipython_config.py'}: deleted (it held only the {EXTENSION} block)"
    ]
    assert list(target.iterdir()) == []


def test_enable_appends_to_user_py_keeping_mode_and_disable_restores_bytes(tmp_path: Path) -> None:
    py = tmp_path / "ipython_config.py"
    py.write_text(USER_PY, encoding="utf-8")
    py.chmod(0o640)
    original = py.read_bytes()

    enable(tmp_path)
    text = py.read_text(encoding="utf-8")
    assert text == USER_PY + "\n" + fragment_text()
    assert stat.S_IMODE(py.stat().st_mode) == 0o640

    assert enable(tmp_path) == []  # twice: no duplicate block
    assert py.read_text(encoding="utf-8").count("extensions.append") == 1

    assert disable(tmp_path) == [f"{py}: removed the {EXTENSION} block"]
    # the newline we added after the user's last line stays; everything else is byte-identical
    assert py.read_bytes() == original + b"\n"
    assert stat.S_IMODE(py.stat().st_mode) == 0o640
    assert disable(tmp_path) == []


def test_json_list_in_same_dir_gets_our_name_and_keeps_other_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "ipython_config.json"
    write_json(cfg, USER_JSON)
    enable(tmp_path)
    enable(tmp_path)
    data = json.loads(cfg.read_text(encoding="utf-8"))
    assert data["InteractiveShellApp"]["extensions"] == ["userext_a", EXTENSION]
    assert data["InteractiveShellApp"]["exec_lines"] == ["marker = 42"]
    assert data["InteractiveShell"] == {"colors": "nocolor"}
    # the JSON list masks any .py of the same dir, so no .py block is written
    assert not (tmp_path / "ipython_config.py").exists()
    disable(tmp_path)
    assert json.loads(cfg.read_text(encoding="utf-8")) == USER_JSON


def test_kernel_json_list_is_extended_and_ipkernelapp_list_never_written(tmp_path: Path) -> None:
    kernel_cfg = tmp_path / "ipython_kernel_config.json"
    user_data = {
        "InteractiveShellApp": {"extensions": ["userext_b"]},
        "IPKernelApp": {"extra_extensions": ["userext_c"]},
    }
    write_json(kernel_cfg, user_data)
    enable(tmp_path)
    data = json.loads(kernel_cfg.read_text(encoding="utf-8"))
    assert data["InteractiveShellApp"]["extensions"] == ["userext_b", EXTENSION]
    assert data["IPKernelApp"] == {"extra_extensions": ["userext_c"]}
    assert (tmp_path / "ipython_config.py").read_text(encoding="utf-8") == fragment_text()
    disable(tmp_path)
    assert json.loads(kernel_cfg.read_text(encoding="utf-8")) == user_data
    assert not (tmp_path / "ipython_config.py").exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("ipython_config.json", '{"InteractiveShellApp": {"extensions": [', "is not valid JSON"),
        ("ipython_kernel_config.json", '["not", "an", "object"]', "holds a JSON list"),
        ("ipython_config.py", "c.InteractiveShellApp.extensions = [\n", "is not valid Python"),
    ],
)
def test_unparsable_file_is_left_byte_identical(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    bad = tmp_path / name
    bad.write_text(content, encoding="utf-8")
    for action in (enable, disable):
        with pytest.raises(ConfigFileError) as info:
            action(tmp_path)
        assert str(bad) in str(info.value)
        assert expected in str(info.value)
        assert "left unchanged" in str(info.value)
        assert bad.read_text(encoding="utf-8") == content
        assert [p.name for p in tmp_path.iterdir()] == [name]


def test_unwritable_target_raises_write_error_naming_path(tmp_path: Path) -> None:
    # Tests run as root, so permissions are no obstacle: put a file where a dir must be.
    (tmp_path / "etc").write_text("not a directory", encoding="utf-8")
    target = tmp_path / "etc" / "ipython"
    with pytest.raises(ConfigWriteError) as info:
        enable(target)
    assert info.value.path == target / "ipython_config.py"
    assert str(target / "ipython_config.py") in str(info.value)


def obeying_permission_bits() -> list[str]:
    """A command prefix under which permission bits stop a write, for root too.

    root passes them through CAP_DAC_OVERRIDE; setpriv (util-linux) drops it, and its
    read-search sibling, from the child's bounding set, so the child is denied as any
    user is. Files that root owns stay readable through their owner bits.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv or "setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    if setpriv is None or subprocess.run([*prefix, "true"], capture_output=True).returncode:
        pytest.skip("as root, this needs setpriv allowed to drop CAP_DAC_OVERRIDE")
    return prefix


def test_read_only_dir_fails_with_the_error_and_the_flag_that_fixes_it(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "asyncbridge_ext", "enable", "--prefix", str(tmp_path / "env")]
    prefix = obeying_permission_bits()
    target = tmp_path / "env" / "etc" / "ipython"
    target.mkdir(parents=True)
    target.chmod(0o555)
    try:
        done = subprocess.run(
            [*prefix, *cli],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        target.chmod(0o755)
    assert done.returncode == 1, done.stdout + done.stderr
    written = target / "ipython_config.py"
    assert f"error: cannot write {written}: Permission denied" in done.stderr
    assert f"You need write permission on {target}" in done.stderr
    assert "use --user" in done.stderr
    assert list(target.iterdir()) == []  # no temp file left behind


def layout(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` ({"env/name" or "profile/name": text}); return the dirs IPython reads."""
    for rel, text in files.items():
        where, name = rel.split("/")
        directory = tmp_path / where / ("etc/ipython" if where == "env" else "")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return config_dirs(tmp_path / "profile", prefix=str(tmp_path / "env"))


def test_config_dirs_order_matches_ipython(tmp_path: Path) -> None:
    from IPython.core.application import ENV_CONFIG_DIRS, SYSTEM_CONFIG_DIRS

    dirs = config_dirs(tmp_path / "profile")
    expected = [tmp_path / "profile", *map(Path, ENV_CONFIG_DIRS), *map(Path, SYSTEM_CONFIG_DIRS)]
    assert dirs == list(reversed(expected))  # IPython lists them highest priority first


def test_effective_list_appends_across_locations(tmp_path: Path) -> None:
    dirs = layout(
        tmp_path,
        {
            "env/ipython_config.json": json.dumps(USER_JSON),
            "profile/ipython_kernel_config.py": APPEND_B,
        },
    )
    enable(tmp_path / "profile")
    reports = read_config_files(dirs)
    assert effective_extensions(reports, "terminal IPython") == [
        "storemagic",
        "userext_a",
        EXTENSION,
    ]
    assert effective_extensions(reports, "Jupyter kernels") == [
        "storemagic",
        "userext_a",
        EXTENSION,
        "userext_b",
    ]
    assert masking_warnings(reports) == []


def test_higher_priority_plain_list_masks_us_and_is_named(tmp_path: Path) -> None:
    masking = {"IPKernelApp": {"extensions": ["userext_c"]}}
    dirs = layout(tmp_path, {"profile/ipython_config.json": json.dumps(masking)})
    enable(tmp_path / "env" / "etc" / "ipython")
    reports = read_config_files(dirs)
    assert EXTENSION in effective_extensions(reports, "terminal IPython")
    assert effective_extensions(reports, "Jupyter kernels") == ["storemagic", "userext_c"]
    [warning] = masking_warnings(reports)
    assert str(tmp_path / "profile" / "ipython_config.json") in warning
    assert "Jupyter kernels will not load" in warning


def test_ipkernelapp_list_masks_a_later_append(tmp_path: Path) -> None:
    # Measured with a real kernel (test_cli_kernels): the app's whole merged config is
    # applied again at the end of start-up, so IPKernelApp.extensions (a plain list, in a
    # lower file and an earlier group) still beats a later InteractiveShellApp .append.
    dirs = layout(
        tmp_path,
        {
            "env/ipython_config.json": json.dumps({"IPKernelApp": {"extensions": ["userext_a"]}}),
            "profile/ipython_kernel_config.py": APPEND_B,
        },
    )
    enable(tmp_path / "profile")
    reports = read_config_files(dirs)
    assert effective_extensions(reports, "Jupyter kernels") == ["storemagic", "userext_a"]
    assert effective_extensions(reports, "terminal IPython") == ["storemagic", EXTENSION]
    [warning] = masking_warnings(reports)
    assert str(tmp_path / "env" / "etc" / "ipython" / "ipython_config.json") in warning
