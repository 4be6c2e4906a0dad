"""``python -m asyncbridge_ext enable|disable|status``: argument parsing and printing only.

The work is done by :func:`asyncbridge_ext.autoload.enable.enable` / ``disable`` and the
functions of :mod:`asyncbridge_ext.autoload.status`, which take the directories as arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.environment import nest_library_findings, nest_library_versions
from .enable import EXTENSION, ConfigFileError, ConfigWriteError, disable, enable
from .status import (
    APPS,
    config_dirs,
    effective_extensions,
    masking_warnings,
    read_config_files,
)

__all__ = ["main"]

DESCRIPTION = f"""\
Load {EXTENSION} automatically in every new Jupyter kernel (ipykernel) and terminal IPython,
by adding it to InteractiveShellApp.extensions in an IPython config directory. Existing
config is merged, never overwritten; other extensions keep loading.
"""

TARGET_HELP = """\
where to write (enable/disable): --user writes the default profile,
$IPYTHONDIR/profile_default (IPYTHONDIR defaults to ~/.ipython), for every Python
environment you run; --sys-prefix writes {sys.prefix}/etc/ipython, for this environment
only. Default: --sys-prefix inside a virtualenv or conda env, else --user.
For status, --prefix/--sys-prefix choose which environment's etc/ipython is shown.
"""


def profile_dir() -> Path:
    """The default profile directory, as IPython finds it (``$IPYTHONDIR/profile_default``)."""
    ipython_dir = os.environ.get("IPYTHONDIR") or "~/.ipython"
    return Path(ipython_dir).expanduser() / "profile_default"


def in_virtual_env() -> bool:
    """True in a venv/virtualenv or a conda environment."""
    return sys.prefix != sys.base_prefix or (Path(sys.prefix) / "conda-meta").is_dir()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {EXTENSION}",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "enable": f"load {EXTENSION} in new kernels and terminal IPython",
        "disable": "undo enable (only what enable added)",
        "status": "show each config file read, the extensions that load, what masks ours, "
        "and the nest libraries installed (known-bad versions are warned about)",
    }
    for name, help_text in helps.items():
        command = commands.add_parser(
            name,
            help=help_text,
            description=help_text + ".\n\n" + TARGET_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        target = command.add_mutually_exclusive_group()
        target.add_argument(
            "--user", action="store_true", help="the default IPython profile ($IPYTHONDIR)"
        )
        target.add_argument(
            "--sys-prefix", action="store_true", help=f"{sys.prefix}/etc/ipython (this env)"
        )
        target.add_argument(
            "--prefix", metavar="PREFIX", help="PREFIX/etc/ipython (the env installed at PREFIX)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    prefix = args.prefix if args.prefix is not None else sys.prefix
    if args.command == "status":
        return _print_status(prefix)
    if args.user or (args.prefix is None and not args.sys_prefix and not in_virtual_env()):
        target, flag = profile_dir(), "--user"
    else:
        target = Path(prefix) / "etc" / "ipython"
        flag = "--prefix" if args.prefix else "--sys-prefix"
    try:
        changes = enable(target) if args.command == "enable" else disable(target)
    except ConfigFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ConfigWriteError as err:
        print(f"error: {err}\n{_permission_hint(flag, err.path)}", file=sys.stderr)
        return 1
    for line in changes:
        print(line)
    if not changes:
        state = "already enabled" if args.command == "enable" else "not enabled"
        print(f"{EXTENSION} was {state} in {target} ({flag}); nothing changed.")
    try:
        reports = read_config_files(config_dirs(profile_dir(), prefix))
    except ImportError:  # traitlets comes with IPython; enable works without it
        print("IPython is not installed here, so what loads at start-up was not checked.")
        return 0
    for app in APPS:
        loaded = EXTENSION in effective_extensions(reports, app)
        print(f"{app}: {EXTENSION} {'loads' if loaded else 'does not load'} at start-up.")
    for warning in masking_warnings(reports):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _permission_hint(flag: str, path: Path) -> str:
    if flag == "--user":
        return (
            f"Make {path.parent} a directory you can write, or point IPYTHONDIR elsewhere, "
            "or use --sys-prefix to write this environment's etc/ipython instead."
        )
    return (
        f"You need write permission on {path.parent}: run as its owner, or use --user to "
        "enable it for your own IPython profile only."
    )


def _print_status(prefix: str) -> int:
    dirs = config_dirs(profile_dir(), prefix)
    reports = read_config_files(dirs)
    print("Config directories, lowest priority first (later ones override earlier ones):")
    for directory in dirs:
        print(f"  {directory}")
    print("Files read (terminal IPython: ipython_config.*; kernels: also ipython_kernel_config.*):")
    if not reports:
        print("  (none exist)")
    for report in reports:
        mark = f"{EXTENSION} enabled here" if report.mentions_us else f"no {EXTENSION}"
        print(f"  {report.path}: {'ERROR ' + report.error if report.error else mark}")
        for setting in report.settings:
            print(f"      {setting}")
    failed = any(report.error for report in reports)
    for app in APPS:
        extensions = effective_extensions(reports, app)
        verdict = "loads" if EXTENSION in extensions else "NOT loaded"
        print(f"{app}: {EXTENSION} {verdict}; extensions: {', '.join(extensions)}")
    print(f"Nest libraries installed for {sys.executable}:")
    for line in nest_library_versions():
        print(f"  {line}")
    for warning in masking_warnings(reports):
        print(f"warning: {warning}")
    for finding in nest_library_findings():
        print(finding.as_line())
    return 1 if failed else 0
