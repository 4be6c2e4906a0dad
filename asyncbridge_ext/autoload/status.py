"""Which config files terminal IPython and Jupyter kernels read, and what they load.

This mirrors, step by step, what IPython 8/9 and ipykernel 6/7 do at start-up, so that
``python -m asyncbridge_ext status`` can say whether ``asyncbridge_ext`` really loads:

* Config directories, lowest priority first: ``/etc/ipython``, ``/usr/local/etc/ipython``
  (on Windows ``%PROGRAMDATA%\\ipython``), ``{sys.prefix}/etc/ipython``, the profile
  directory. In each, ``.py`` is read before ``.json`` (JSON wins).
* Terminal IPython reads ``ipython_config``; a kernel reads ``ipython_config`` from all
  directories, then ``ipython_kernel_config`` from all directories. All of it ends up merged
  into the app's one ``config`` (``Config.merge``: a plain value replaces, a lazy ``.append``
  adds), and that whole config is applied again at the end of start-up (``update_config``
  assigns a copy, which fires ``_config_changed``). So the result is that of one merge.
* Sections then merge in class order: ``InteractiveShellApp`` then ``TerminalIPythonApp`` /
  ``IPKernelApp``; a plain list in the latter wins, even from an earlier, lower file.
* The extensions loaded are ``['storemagic'] + extensions + extra_extensions``.

Python config files are executed to be read, exactly as IPython does on every start.
traitlets is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .enable import EXTENSION

__all__ = [
    "APPS",
    "ConfigFileReport",
    "config_dirs",
    "effective_extensions",
    "masking_warnings",
    "read_config_files",
]

# app label -> (config file groups in load order, config sections in merge order)
APPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "terminal IPython": (("ipython_config",), ("InteractiveShellApp", "TerminalIPythonApp")),
    "Jupyter kernels": (
        ("ipython_config", "ipython_kernel_config"),
        ("InteractiveShellApp", "IPKernelApp"),
    ),
}
TRAITS = ("extensions", "extra_extensions")
DEFAULT_EXTENSIONS = ["storemagic"]


@dataclass
class ConfigFileReport:
    """One config file that exists in a config directory, and its extension settings."""

    path: Path
    group: str  # "ipython_config" or "ipython_kernel_config"
    config: Any = None  # traitlets Config, None when the file failed to load
    error: str | None = None
    settings: list[str] = field(default_factory=list)  # e.g. "IPKernelApp.extensions = [...]"
    names: set[str] = field(default_factory=set)  # every extension name the file mentions

    @property
    def mentions_us(self) -> bool:
        return EXTENSION in self.names

    def replaces_list(self, sections: Sequence[str]) -> bool:
        """True if this file sets a plain (replacing) extensions list in one of ``sections``."""
        from traitlets.config.loader import LazyConfigValue

        if self.config is None:
            return False
        return any(
            section in self.config
            and "extensions" in self.config[section]
            and not isinstance(self.config[section]["extensions"], LazyConfigValue)
            for section in sections
        )


def config_dirs(profile_dir: Path, prefix: str | None = None) -> list[Path]:
    """The directories IPython searches, lowest priority first, as IPython computes them."""
    if os.name == "nt":
        programdata = os.environ.get("PROGRAMDATA")
        system = [Path(programdata) / "ipython"] if programdata else []
    else:
        system = [Path("/usr/local/etc/ipython"), Path("/etc/ipython")]  # IPython's order
    env_dir = Path(prefix if prefix is not None else sys.prefix) / "etc" / "ipython"
    dirs = list(reversed(system))
    if env_dir not in system:
        dirs.append(env_dir)
    dirs.append(Path(profile_dir))
    return dirs


def read_config_files(dirs: Sequence[Path]) -> list[ConfigFileReport]:
    """Every existing config file in ``dirs`` (lowest priority first), in load order."""
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    loaders = ((".py", PyFileConfigLoader), (".json", JSONFileConfigLoader))
    reports: list[ConfigFileReport] = []
    for group in ("ipython_config", "ipython_kernel_config"):
        for directory in dirs:
            for suffix, loader_class in loaders:
                path = Path(directory) / (group + suffix)
                if not path.is_file():
                    continue
                report = ConfigFileReport(path, group)
                try:
                    loader = loader_class(path.name, path=str(directory))
                    report.config = loader.load_config()
                except Exception as err:  # a broken file is reported, as IPython logs it
                    report.error = f"{type(err).__name__}: {err}"
                else:
                    report.settings, report.names = _describe_settings(report.config)
                reports.append(report)
    return reports


def _describe_settings(config: Any) -> tuple[list[str], set[str]]:
    from traitlets.config.loader import LazyConfigValue

    lines = []
    names: set[str] = set()
    for section in ("InteractiveShellApp", "TerminalIPythonApp", "IPKernelApp"):
        for trait in TRAITS:
            if section not in config or trait not in config[section]:
                continue
            value = config[section][trait]
            if isinstance(value, LazyConfigValue):
                added = value.to_dict()
                items = [*added.get("prepend", []), *added.get("extend", [])]
                items += [item for _index, item in added.get("inserts", [])]
                lines.append(f"{section}.{trait} += {items!r}")
            else:
                items = list(value) if isinstance(value, (list, tuple)) else [value]
                lines.append(f"{section}.{trait} = {value!r}")
            names.update(str(item) for item in items)
    return lines, names


def effective_extensions(reports: Sequence[ConfigFileReport], app: str) -> list[str]:
    """The extension names ``app`` (a key of :data:`APPS`) loads, in load order."""
    from traitlets.config.loader import Config, LazyConfigValue

    groups, sections = APPS[app]
    merged = Config()
    for report in reports:
        if report.group in groups and report.config is not None:
            merged.merge(copy.deepcopy(report.config))
    mine = Config()
    for section in sections:
        if section in merged:
            mine.merge(merged[section])
    values: dict[str, list[Any]] = {trait: [] for trait in TRAITS}
    for trait in TRAITS:
        value = mine[trait] if trait in mine else None
        if isinstance(value, LazyConfigValue):
            values[trait] = value.get_value([])
        elif isinstance(value, (list, tuple)):
            values[trait] = list(value)
    return [*DEFAULT_EXTENSIONS, *values["extensions"], *values["extra_extensions"]]


def masking_warnings(reports: Sequence[ConfigFileReport]) -> list[str]:
    """Warnings for files that stop an ``asyncbridge_ext`` enabled elsewhere from loading."""
    warnings = []
    for app, (groups, sections) in APPS.items():
        read = [report for report in reports if report.group in groups]
        ours = [index for index, report in enumerate(read) if report.mentions_us]
        if not ours or EXTENSION in effective_extensions(read, app):
            continue
        last = ours[-1]
        maskers = [
            report
            for index, report in enumerate(read)
            if not report.mentions_us
            and (
                (index > last and report.replaces_list(sections))
                # an app-specific section beats InteractiveShellApp from any file
                or report.replaces_list(sections[1:])
            )
        ]
        for report in maskers:
            warnings.append(
                f"{report.path} sets a plain extensions list without {EXTENSION!r}; it "
                f"replaces the list {read[last].path} adds to, so {app} will not load "
                f"{EXTENSION}. Add {EXTENSION!r} to that list (or use .append in a .py file)."
            )
        if not maskers:
            warnings.append(
                f"{EXTENSION} is named in {read[last].path}, but {app} will not load it."
            )
    return warnings
