"""Turn auto-loading of ``asyncbridge_ext`` on and off in one IPython config directory.

Kernels (ipykernel) and terminal IPython read ``ipython_config.{py,json}`` (kernels then also
``ipython_kernel_config.{py,json}``) from ``/etc/ipython``, ``/usr/local/etc/ipython``,
``{sys.prefix}/etc/ipython`` and the profile directory, later ones winning. A plain list
(``extensions = [...]``, or any list in a JSON file) *replaces* the lists of lower-priority
files; only a ``.py`` file can add to them lazily with ``.append``. The JSON loader has no
such form: ``{"extensions": {"extend": [...]}}`` is passed to the trait as a dict and the
kernel dies with "expected a list, not the dict".

So :func:`enable` merges, it never overwrites:

* If ``ipython_config.json`` or ``ipython_kernel_config.json`` in the directory already sets
  ``InteractiveShellApp.extensions`` (a plain list, which masks any ``.py`` of the same
  directory), ``asyncbridge_ext`` is added to that list; every other key is kept.
* Unless ``ipython_config.json`` holds such a list, the block from
  ``jupyter-config/ipython_config_fragment.py`` is appended to ``ipython_config.py`` (created
  if missing). It does ``c.InteractiveShellApp.extensions.append("asyncbridge_ext")``, which
  adds to whatever the lower-priority files set instead of masking them, and works for
  terminal IPython and kernels alike.
* ``IPKernelApp.*`` / ``TerminalIPythonApp.*`` lists are never written: they would hide the
  user's ``InteractiveShellApp.extensions``.

:func:`disable` removes exactly those: the marked block, and our name from those JSON lists.
Writes are atomic (temporary file in the same directory, then ``os.replace``) and keep the
file's mode. A file we cannot parse is never touched: :class:`ConfigFileError` names it.
"""

from __future__ import annotations

import ast
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "EXTENSION",
    "ConfigFileError",
    "ConfigWriteError",
    "disable",
    "enable",
    "fragment_text",
]

EXTENSION = "asyncbridge_ext"
FRAGMENT_NAME = "ipython_config_fragment.py"
JSON_FILES = ("ipython_config.json", "ipython_kernel_config.json")
PY_FILE = "ipython_config.py"
_JSON_KEY = "InteractiveShellApp.extensions"


class ConfigFileError(Exception):
    """A config file we would have to change cannot be read safely; it was left untouched."""


class ConfigWriteError(Exception):
    """The config directory or file cannot be written."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")
        self.path = path


def fragment_text() -> str:
    """The block added to ``ipython_config.py``, read from the shipped jupyter-config/.

    A wheel carries it inside the package (``asyncbridge_ext/jupyter-config/``); a source
    checkout or editable install reads the repository's ``jupyter-config/`` directly.
    """
    packaged = resources.files(EXTENSION) / "jupyter-config" / FRAGMENT_NAME
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parents[2] / "jupyter-config" / FRAGMENT_NAME
    return source.read_text(encoding="utf-8")


def _markers() -> tuple[str, str]:
    lines = fragment_text().splitlines()
    return lines[0], lines[-1]


def enable(target_dir: Path) -> list[str]:
    """Make ``asyncbridge_ext`` load from the config directory ``target_dir``.

    Returns one line per file changed (empty if it was already enabled there).
    Every file is read and checked before any is written, so a :class:`ConfigFileError`
    leaves the directory as it was; a :class:`ConfigWriteError` names the file that failed.
    """
    target_dir = Path(target_dir)
    json_configs = {name: _read_json(target_dir / name) for name in JSON_FILES}
    py_path = target_dir / PY_FILE
    py_text = _read_py(py_path)
    begin, _end = _markers()
    changes: list[str] = []
    for name, data in json_configs.items():
        extensions = _json_extensions(data)
        if data is not None and extensions is not None and EXTENSION not in extensions:
            extensions.append(EXTENSION)
            _write_atomic(target_dir / name, _dump_json(data))
            changes.append(f"{target_dir / name}: added {EXTENSION!r} to {_JSON_KEY}")
    if _json_extensions(json_configs["ipython_config.json"]) is None and (
        py_text is None or begin not in py_text.splitlines()
    ):
        old = py_text or ""
        separator = "\n" if old and not old.endswith("\n") else ""
        _write_atomic(py_path, old + separator + fragment_text())
        verb = "appended" if py_text is not None else "created with"
        changes.append(f"{py_path}: {verb} c.InteractiveShellApp.extensions.append({EXTENSION!r})")
    return changes


def disable(target_dir: Path) -> list[str]:
    """Undo :func:`enable` in ``target_dir``: drop our block and our name from JSON lists.

    Returns one line per file changed (empty if there was nothing to undo). A
    ``ipython_config.py`` holding nothing but our block is removed.
    """
    target_dir = Path(target_dir)
    json_configs = {name: _read_json(target_dir / name) for name in JSON_FILES}
    py_path = target_dir / PY_FILE
    py_text = _read_py(py_path)
    changes: list[str] = []
    for name, data in json_configs.items():
        extensions = _json_extensions(data)
        if data is not None and extensions is not None and EXTENSION in extensions:
            extensions[:] = [ext for ext in extensions if ext != EXTENSION]
            _write_atomic(target_dir / name, _dump_json(data))
            changes.append(f"{target_dir / name}: removed {EXTENSION!r} from {_JSON_KEY}")
    if py_text is not None:
        remaining = _remove_block(py_text)
        if remaining != py_text:
            if remaining:
                _write_atomic(py_path, remaining)
                changes.append(f"{py_path}: removed the {EXTENSION} block")
            else:
                _remove(py_path)
                changes.append(f"{py_path}: deleted (it held only the {EXTENSION} block)")
    return changes


def _remove_block(text: str) -> str:
    """``text`` without the lines from our begin marker to our end marker (inclusive)."""
    begin, end = _markers()
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped == begin:
            inside = True
        elif inside and stripped == end:
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)


def _read_json(path: Path) -> dict[str, Any] | None:
    """The parsed JSON object in ``path``, None if absent; ConfigFileError if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # a missing dir is created on write
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigFileError(f"cannot read {path}: {err}. It was left unchanged.") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigFileError(
            f"{path} is not valid JSON ({err}). It was left unchanged; fix or remove it, "
            "then run this command again."
        ) from err
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{path} holds a JSON {type(data).__name__}, not an object. It was left "
            "unchanged; fix or remove it, then run this command again."
        )
    return data


def _json_extensions(data: dict[str, Any] | None) -> list[Any] | None:
    """The ``InteractiveShellApp.extensions`` list in a parsed JSON config, if it has one."""
    section = (data or {}).get("InteractiveShellApp")
    value = section.get("extensions") if isinstance(section, dict) else None
    return value if isinstance(value, list) else None


def _dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def _read_py(path: Path) -> str | None:
    """The text of a Python config file, None if absent; ConfigFileError if unsafe to edit."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # a missing dir is created on write
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigFileError(
            f"cannot read {path} as UTF-8 text ({err}). It was left unchanged; fix it, or add "
            f'c.InteractiveShellApp.extensions.append("{EXTENSION}") to it by hand.'
        ) from err
    try:
        ast.parse(text, filename=str(path))
    except SyntaxError as err:
        raise ConfigFileError(
            f"{path} is not valid Python (line {err.lineno}: {err.msg}). It was left "
            "unchanged; fix the file, then run this command again."
        ) from err
    return text


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, keeping its permission bits."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_current_umask()
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise ConfigWriteError(path, err) from err
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp_file:
            tmp_file.write(text)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except OSError as err:
        Path(tmp_name).unlink(missing_ok=True)
        raise ConfigWriteError(path, err) from err


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError as err:
        raise ConfigWriteError(path, err) from err


def _current_umask() -> int:
    # os.umask can only be read by setting it; this runs in the CLI's single thread.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
