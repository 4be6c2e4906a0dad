"""Run a notebook top to bottom in a real Jupyter kernel and print each cell with its output.

Used by ``make demo``::

    python notebooks/show.py notebooks/quickstart.ipynb

The kernel is the ``python3`` kernel of the current environment. The exit status is 1 if
a cell raised an error it was not tagged to raise (``raises-exception``). ``--save``
writes the fresh outputs back into the notebook, which is how the stored outputs that
nbval compares against are made.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

RULE = "-" * 72


def _output_text(output: dict[str, object]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return str(output.get("text", ""))
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n"
    data = output.get("data", {})
    if isinstance(data, dict):
        if "text/plain" in data:
            prefix = f"Out[{output['execution_count']}]: " if kind == "execute_result" else ""
            return prefix + str(data["text/plain"]) + "\n"
        return f"[{', '.join(sorted(data))}]\n"
    return ""


def run_notebook(path: Path, timeout: float) -> nbformat.NotebookNode:
    """Execute ``path`` in a fresh kernel, with the notebook's folder as working directory."""
    notebook = nbformat.read(path, as_version=4)
    # A private IPython dir: the user's own profile (and any auto-load they set up)
    # must not change what the demo shows.
    with tempfile.TemporaryDirectory(prefix="asyncbridge-demo-") as ipython_dir:
        os.environ["IPYTHONDIR"] = ipython_dir
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            # The kernel's own start-up warnings (ipykernel 7.4 warns that local TCP is
            # unencrypted) are not part of the demo; its errors still show.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
        client.execute()
    return notebook


def print_notebook(notebook: nbformat.NotebookNode) -> int:
    """Print every code cell and its outputs; return how many cells failed unexpectedly."""
    failures = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        print(RULE)
        print(f"In [{cell.get('execution_count') or ' '}]:")
        print(cell.source)
        expected_error = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        for output in cell.get("outputs", []):
            text = _output_text(output)
            if text:
                print(text, end="" if text.endswith("\n") else "\n")
            if output.get("output_type") == "error" and not expected_error:
                failures += 1
    print(RULE)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=float, default=120, help="seconds per cell")
    parser.add_argument("--save", action="store_true", help="write the outputs back")
    args = parser.parse_args(argv)
    try:
        notebook = run_notebook(args.notebook, args.timeout)
    except CellExecutionError as exc:
        print(exc, file=sys.stderr)
        print(f"{args.notebook}: a cell failed; see above.", file=sys.stderr)
        return 1
    failures = print_notebook(notebook)
    if args.save:
        nbformat.write(notebook, args.notebook)
        print(f"saved the outputs into {args.notebook}")
    if failures:
        print(f"{args.notebook}: {failures} cell(s) failed.", file=sys.stderr)
        return 1
    print(f"{args.notebook}: every cell ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
