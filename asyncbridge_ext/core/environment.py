"""What is installed, and which installed versions are known to be bad (no kernel needed).

Shared by ``python -m asyncbridge_ext status`` and ``%asyncbridge``. Versions come from
the installed distributions' metadata (:mod:`importlib.metadata`); nothing here imports
a nest library or IPython.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

__all__ = [
    "MIN_NEST_ASYNCIO2",
    "Finding",
    "installed_version",
    "nest_library_findings",
    "nest_library_versions",
    "version_tuple",
]

#: nest-asyncio2 before this drops the cells queued behind a nested run on ipykernel 7.
MIN_NEST_ASYNCIO2 = (1, 7, 3)

UPGRADE_NEST_ASYNCIO2 = "pip install --upgrade 'nest-asyncio2>=1.7.3'"


@dataclass(frozen=True)
class Finding:
    """A known-bad combination found, and what to do about it."""

    problem: str
    fix: str

    def as_line(self) -> str:
        return f"warning: {self.problem} Fix: {self.fix}"


def version_tuple(text: str) -> tuple[int, ...]:
    """The release numbers of a version: ``"1.7.2"`` -> ``(1, 7, 2)``, ``"1.7.3rc1"`` -> 1.7.3.

    A part stops at its first non-digit, and the parts after it are dropped, so a
    pre-release or local suffix never reads as a larger number.
    """
    parts = []
    for piece in text.split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts) or (0,)


def installed_version(distribution: str, path: Sequence[str] | None = None) -> str | None:
    """The installed version of ``distribution``, or None; ``path`` replaces ``sys.path``."""
    if path is None:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return None
    for found in metadata.distributions(name=distribution, path=list(path)):
        version: str = found.version
        return version
    return None


def nest_library_findings(path: Sequence[str] | None = None) -> list[Finding]:
    """Warnings about the nest libraries *installed* (``path``: where to look, default sys.path).

    The archived nest_asyncio is reported as installed-but-harmless unless something
    applies it; ``%asyncbridge`` reports separately when it is in force.
    """
    findings = []
    nest2 = installed_version("nest-asyncio2", path)
    if nest2 is None:
        findings.append(
            Finding(
                "nest-asyncio2 is not installed; nested_run = 'nest' (the default) needs it.",
                UPGRADE_NEST_ASYNCIO2,
            )
        )
    elif version_tuple(nest2) < MIN_NEST_ASYNCIO2:
        findings.append(
            Finding(
                f"nest-asyncio2 {nest2} is installed; versions before 1.7.3 drop the cells "
                "queued behind a nested asyncio.run on ipykernel 7.",
                f"{UPGRADE_NEST_ASYNCIO2}, then restart the kernel.",
            )
        )
    archived = installed_version("nest-asyncio", path)
    if archived is not None:
        findings.append(
            Finding(
                f"the archived nest_asyncio {archived} is installed. It is harmless unless "
                "something applies it (llama-index and ib_async do); once applied, on "
                "ipykernel 7 cells queued behind a nested run can be lost.",
                "load asyncbridge_ext at kernel start (python -m asyncbridge_ext enable) "
                "so asyncio is patched by nest-asyncio2 first; or pip uninstall nest-asyncio "
                "if nothing you use needs it (ipykernel 6 and jupyter_client 7 require it: "
                "keep it there, as on Colab).",
            )
        )
    return findings


def nest_library_versions(path: Sequence[str] | None = None) -> list[str]:
    """``name: version`` lines for the two nest libraries, as installed (for ``status``)."""
    nest2 = installed_version("nest-asyncio2", path) or "not installed"
    archived = installed_version("nest-asyncio", path)
    return [
        f"nest-asyncio2: {nest2}",
        f"nest_asyncio: {archived + ' (archived upstream)' if archived else 'not installed'}",
    ]


def python_version() -> str:
    return sys.version.split()[0]
