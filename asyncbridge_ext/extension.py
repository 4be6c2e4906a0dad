"""Load and unload the IPython extension (placeholder until the magics land)."""

from __future__ import annotations

from typing import Any


def load(ipython: Any) -> None:
    """Register the extension with ``ipython``."""


def unload(ipython: Any) -> None:
    """Undo :func:`load`."""
