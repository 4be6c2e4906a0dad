"""Helpers for the CLI tests: throw-away extensions, environments and real kernels."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from support.kernel_harness import ipc_transport

USER_EXTENSIONS = ("userext_a", "userext_b", "userext_c", "userext_d")


def _bundled_extension_besides_storemagic() -> str:
    """A second extension for the configs: IPython's autoreload, spelled in full.

    IPython 7's autoreload imports ``imp``, which Python 3.12 removed, so on Colab's stack
    (IPython 7.34, Python 3.12) it cannot load; a user extension stands in for it there.
    """
    try:
        import IPython.extensions.autoreload  # noqa: F401
    except ImportError:
        return "userext_d"
    return "IPython.extensions.autoreload"


ANOTHER_EXTENSION = _bundled_extension_besides_storemagic()
LOADED_MARKER = "loaded extensions: "
PRINT_LOADED = f"print({LOADED_MARKER!r}, sorted(get_ipython().extension_manager.loaded), sep='')"
BUILTIN_EXTENSIONS = ("storemagic", "autoreload")


def write_user_extensions(directory: Path) -> Path:
    """Write importable no-op IPython extensions ``userext_a`` to ``_d`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in USER_EXTENSIONS:
        (directory / f"{name}.py").write_text(
            "def load_ipython_extension(ipython):\n    pass\n", encoding="utf-8"
        )
    return directory


def make_prefix_env(prefix: Path) -> Path:
    """A venv at ``prefix`` (its own sys.prefix) that sees this venv's packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    site_dir = Path(sysconfig.get_path("purelib", vars={"base": str(prefix)}))
    ours = sysconfig.get_path("purelib")
    # addsitedir (not a bare path) so the editable-install .pth files in ours are read too.
    (site_dir / "_abx_parent_env.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n", encoding="utf-8"
    )
    return prefix / "bin" / "python"


def kernel_env(ipython_dir: Path, extensions_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(ipython_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extensions_dir), env.get("PYTHONPATH")]))
    return env


@contextmanager
def running_kernel(
    env: dict[str, str], spec_root: Path, python: str = sys.executable
) -> Iterator[Any]:
    """A real ipykernel run by ``python`` with ``env``; yields a ready BlockingKernelClient."""
    spec_dir = spec_root / "kernels" / "abx-cli-test"
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "abx cli test", "language": "python"}),
        encoding="utf-8",
    )
    with tempfile.TemporaryDirectory(prefix="abx-ipc-") as sockets:
        manager = KernelManager(
            kernel_name="abx-cli-test",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]),
            **ipc_transport(sockets),
        )
        manager.start_kernel(env=env)
        client = manager.client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=60)
            yield client
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def kernel_loaded_extensions(
    env: dict[str, str], spec_root: Path, python: str = sys.executable
) -> set[str]:
    """Start a kernel, return ``extension_manager.loaded`` from inside it, shut it down."""
    chunks: list[str] = []

    def collect(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            chunks.append(msg["content"]["text"])

    with running_kernel(env, spec_root, python) as client:
        reply = client.execute_interactive(PRINT_LOADED, timeout=30, output_hook=collect)
    assert reply["content"]["status"] == "ok", reply["content"]
    return _parse_loaded("".join(chunks))


def terminal_loaded_extensions(env: dict[str, str]) -> set[str]:
    """Run terminal IPython with ``env`` and return the extensions it loaded."""
    ipython = Path(sys.executable).with_name("ipython")
    result = subprocess.run(
        [str(ipython), "--no-banner", "-c", PRINT_LOADED],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return _parse_loaded(result.stdout)


def _parse_loaded(stdout: str) -> set[str]:
    """The names PRINT_LOADED printed, bundled ones spelled ``IPython.extensions.X``.

    Terminal IPython 7 writes its terminal-title escape sequence to stdout just before
    (hence the marker), and IPython < 8 records a bundled extension by its short name
    (``storemagic``) where 8+ records ``IPython.extensions.storemagic``: the same one.
    """
    names = ast.literal_eval(stdout.rpartition(LOADED_MARKER)[2].strip())
    return as_loaded_names(names)


def as_loaded_names(extensions: list[str]) -> set[str]:
    """Config-level names as ``extension_manager.loaded`` spells them (bundled get a prefix)."""
    return {
        f"IPython.extensions.{name}" if name in BUILTIN_EXTENSIONS else name for name in extensions
    }
