"""nbval runs these notebooks in real kernels: keep the user's IPython profile out of it.

A private IPYTHONDIR means a user's own config (say, an auto-load set up with
``python -m asyncbridge_ext enable --user``) cannot change what the notebooks show.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_private_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _private_dir
    _private_dir = tempfile.mkdtemp(prefix="asyncbridge-nbval-ipython-")
    os.environ["IPYTHONDIR"] = _private_dir


def pytest_unconfigure(config: pytest.Config) -> None:
    if _private_dir is not None:
        shutil.rmtree(_private_dir, ignore_errors=True)
