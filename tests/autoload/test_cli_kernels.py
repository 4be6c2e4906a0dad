"""enable/disable checked against what real kernels and terminal IPython actually load.

Each test builds its own IPYTHONDIR (and, for --sys-prefix, its own venv whose sys.prefix is
a temporary directory), so nothing touches ~/.ipython or this venv's etc/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncbridge_ext.autoload.enable import EXTENSION, disable, enable
from asyncbridge_ext.autoload.status import (
    config_dirs,
    effective_extensions,
    masking_warnings,
    read_config_files,
)
from support.cli_helpers import (
    ANOTHER_EXTENSION,
    as_loaded_names,
    kernel_env,
    kernel_loaded_extensions,
    make_prefix_env,
    terminal_loaded_extensions,
    write_user_extensions,
)

pytestmark = pytest.mark.timeout(180)

PROFILE_PY = (
    "c.InteractiveShellApp.exec_lines = ['marker = 42']\n"
    f"c.InteractiveShellApp.extensions = ['userext_a', {ANOTHER_EXTENSION!r}]\n"
)
PROFILE_KERNEL_PY = "c.InteractiveShellApp.extensions.append('userext_b')\n"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, Path]:
    """Throw-away IPYTHONDIR, extension dir and kernelspec root."""
    paths = {
        "ipython_dir": tmp_path / "ipython",
        "profile": tmp_path / "ipython" / "profile_default",
        "extensions": write_user_extensions(tmp_path / "extensions"),
        "specs": tmp_path / "specs",
    }
    paths["profile"].mkdir(parents=True)
    return paths


def snapshot(directory: Path) -> dict[str, bytes]:
    """The config files in ``directory`` (IPython also keeps history etc. in a profile)."""
    return {p.name: p.read_bytes() for p in sorted(directory.glob("ipython_*config.*"))}


def test_user_profile_enable_then_disable_with_real_kernel_and_terminal(
    home: dict[str, Path],
) -> None:
    profile = home["profile"]
    (profile / "ipython_config.py").write_text(PROFILE_PY, encoding="utf-8")
    (profile / "ipython_kernel_config.py").write_text(PROFILE_KERNEL_PY, encoding="utf-8")
    before = snapshot(profile)
    env = kernel_env(home["ipython_dir"], home["extensions"])

    enable(profile)
    others = {"userext_a", "userext_b", ANOTHER_EXTENSION, "IPython.extensions.storemagic"}
    loaded = kernel_loaded_extensions(env, home["specs"])
    assert loaded == others | {EXTENSION}
    terminal = terminal_loaded_extensions(env)
    assert terminal == (others - {"userext_b"}) | {EXTENSION}  # kernel_config: kernels only

    disable(profile)
    assert snapshot(profile) == before
    assert kernel_loaded_extensions(env, home["specs"]) == others


def test_sys_prefix_enable_merges_with_profile_in_kernel_of_that_prefix(
    home: dict[str, Path], tmp_path: Path
) -> None:
    prefix = tmp_path / "env"
    python = make_prefix_env(prefix)
    env_dir = prefix / "etc" / "ipython"
    env_dir.mkdir(parents=True)
    env_json = {
        "InteractiveShellApp": {"extensions": ["userext_a"]},
        "InteractiveShell": {"colors": "nocolor"},
    }
    (env_dir / "ipython_config.json").write_text(json.dumps(env_json), encoding="utf-8")
    # a higher-priority .py that appends keeps the lower lists (ours included)
    (home["profile"] / "ipython_config.py").write_text(
        "c.InteractiveShellApp.extensions.append('userext_b')\n", encoding="utf-8"
    )
    env = kernel_env(home["ipython_dir"], home["extensions"])

    enable(env_dir)
    assert json.loads((env_dir / "ipython_config.json").read_text(encoding="utf-8")) == {
        "InteractiveShellApp": {"extensions": ["userext_a", EXTENSION]},
        "InteractiveShell": {"colors": "nocolor"},
    }
    reports = read_config_files(config_dirs(home["profile"], str(prefix)))
    predicted = effective_extensions(reports, "Jupyter kernels")
    loaded = kernel_loaded_extensions(env, home["specs"], str(python))
    assert loaded == {"IPython.extensions.storemagic", "userext_a", EXTENSION, "userext_b"}
    assert loaded == as_loaded_names(predicted)

    disable(env_dir)
    assert json.loads((env_dir / "ipython_config.json").read_text(encoding="utf-8")) == env_json


def test_masking_list_in_profile_beats_sys_prefix_as_status_predicts(
    home: dict[str, Path], tmp_path: Path
) -> None:
    prefix = tmp_path / "env"
    python = make_prefix_env(prefix)
    enable(prefix / "etc" / "ipython")
    masking = home["profile"] / "ipython_kernel_config.json"
    masking.write_text(json.dumps({"IPKernelApp": {"extensions": ["userext_c"]}}), "utf-8")
    env = kernel_env(home["ipython_dir"], home["extensions"])

    reports = read_config_files(config_dirs(home["profile"], str(prefix)))
    predicted = effective_extensions(reports, "Jupyter kernels")
    assert EXTENSION not in predicted
    [warning] = masking_warnings(reports)
    assert str(masking) in warning
    loaded = kernel_loaded_extensions(env, home["specs"], str(python))
    assert loaded == as_loaded_names(predicted) == {"IPython.extensions.storemagic", "userext_c"}


def test_ipkernelapp_list_masks_later_append_as_status_predicts(home: dict[str, Path]) -> None:
    # The kernel applies its whole merged config again at the end of start-up, so a plain
    # IPKernelApp list beats an InteractiveShellApp .append even from a later file.
    profile = home["profile"]
    (profile / "ipython_config.json").write_text(
        json.dumps({"IPKernelApp": {"extensions": ["userext_a"]}}), encoding="utf-8"
    )
    (profile / "ipython_kernel_config.py").write_text(PROFILE_KERNEL_PY, encoding="utf-8")
    env = kernel_env(home["ipython_dir"], home["extensions"])
    predicted = effective_extensions(read_config_files([profile]), "Jupyter kernels")
    loaded = kernel_loaded_extensions(env, home["specs"])
    assert loaded == as_loaded_names(predicted)
    assert loaded == {"IPython.extensions.storemagic", "userext_a"}
