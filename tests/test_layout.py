"""The package's layout rules, checked on its source: what each subpackage may import.

- ``import asyncbridge_ext`` (and ``.core``, ``.nested``, ``.autoload``, every module in
  them) loads no IPython, ipykernel, traitlets, jupyter_client or nest library: checked in
  a fresh interpreter, so nothing the test session imported hides a leak.
- Imports run one way: ``ipython`` -> ``nested`` -> ``core``, and ``autoload`` -> ``core``
  (the root package holds the public names and ``__version__``, and imports ``ipython``
  only inside the two extension hooks).
- An ``_x`` module is private to its subpackage: no other subpackage imports it.
- Every ``__all__`` names only what its module defines.

The import graph is read from the source (``ast``), lazy imports inside functions included.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asyncbridge_ext"
ROOT = "asyncbridge_ext"

#: Which subpackages each may import ("" is the root package: asyncbridge_ext/__init__.py
#: and __main__.py). Every one may import itself.
MAY_IMPORT = {
    "core": set(),
    "nested": {"core"},
    "ipython": {"nested", "core", ""},
    "autoload": {"core"},
    "": {"core", "ipython", "autoload"},
}
#: What the root may give the subpackages that import it: its version, nothing else.
FROM_ROOT = {"__version__"}
#: Never imported, not even lazily, by these subpackages.
FOREIGN = ("IPython", "ipykernel", "traitlets", "jupyter_client", "tornado", "zmq")
NEVER_IN = {"core": FOREIGN, "nested": FOREIGN, "autoload": ("IPython", "ipykernel")}
#: Must not be in sys.modules after importing the IPython-free parts.
NOT_LOADED = (*FOREIGN, "nest_asyncio", "nest_asyncio2")


def module_name(path: Path, package_dir: Path = PACKAGE) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def subpackage(module: str) -> str:
    """``core`` for asyncbridge_ext.core.nest, ``""`` for asyncbridge_ext and __main__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in MAY_IMPORT) else ""


def imports_of(path: Path, package_dir: Path) -> list[tuple[str, list[str], int]]:
    """Every import in the file as (absolute module, names imported from it, line)."""
    module = module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            found.append((target, names, node.lineno))
    return found


def violations(package_dir: Path = PACKAGE) -> list[str]:
    """Every import in ``package_dir`` that breaks a rule of the module docstring."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        module = module_name(path, package_dir)
        where = f"{path.relative_to(package_dir.parent)}"
        own = subpackage(module)
        for target, names, line in imports_of(path, package_dir):
            top = target.split(".")[0]
            if top in NEVER_IN.get(own, ()):
                found.append(f"{where}:{line}: {own}/ imports {target}")
            if top != ROOT:
                continue
            # "from asyncbridge_ext.core import _call" names a module too.
            targets = [target] + [f"{target}.{name}" for name in names if name.startswith("_")]
            for each in targets:
                other = subpackage(each)
                if other == "" and each == ROOT and own != "":
                    if not set(names) <= FROM_ROOT:
                        found.append(f"{where}:{line}: {own}/ imports {names} from the root")
                    continue
                if other != own and other not in MAY_IMPORT[own]:
                    found.append(f"{where}:{line}: {own or 'the root'} imports {each} ({other}/)")
                private = [p for p in each.split(".")[2:] if p.startswith("_")]
                if other != own and private and own != "":
                    found.append(f"{where}:{line}: {own}/ imports {each}, private to {other}/")
    return found


def test_imports_run_one_way_and_private_modules_stay_in_their_subpackage() -> None:
    assert violations() == []


def test_the_rules_catch_an_import_against_the_order(tmp_path: Path) -> None:
    """The checker itself: a copy of the package with three bad imports added."""
    copy = tmp_path / ROOT
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with (copy / "core" / "loop_thread.py").open("a") as file:
        file.write("\nfrom ..nested import redirect\n")
    with (copy / "nested" / "redirect.py").open("a") as file:
        file.write("\ndef late():\n    import IPython\n")
    with (copy / "autoload" / "cli.py").open("a") as file:
        file.write("\nfrom ..core import _call\n")
    found = "\n".join(violations(copy))
    assert "core imports asyncbridge_ext.nested (nested/)" in found, found
    assert "nested/ imports IPython" in found, found
    assert "autoload/ imports asyncbridge_ext.core._call, private to core/" in found, found


def test_the_ipython_free_parts_load_no_ipython_traitlets_or_nest_library() -> None:
    modules = [
        module_name(path)
        for sub in ("core", "nested", "autoload")
        for path in sorted((PACKAGE / sub).rglob("*.py"))
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {['asyncbridge_ext', *modules]!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {NOT_LOADED!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    "module",
    sorted(module_name(path) for path in PACKAGE.rglob("*.py") if path.name != "__main__.py"),
)
def test_every_all_names_what_its_module_defines(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in getattr(imported, "__all__", ()) if not hasattr(imported, name)]
    assert missing == []
