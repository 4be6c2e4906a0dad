"""What an older IPython lacks, filled in here once, next to the import.

When a name the package imports from IPython is missing from an older release, the
fallback lives in this module, and the rest of the package imports it from here and
never checks a version. The oldest stack we serve is Google Colab's (IPython 7.34,
ipykernel 6.17.1, traitlets 5.7.1); each fallback names the versions it was checked on.
Runs at import on the importing thread; starts nothing.
"""

from __future__ import annotations

import functools
import io
import tokenize
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["output_can_be_silenced"]

_Magic = TypeVar("_Magic", bound=Callable[..., Any])


def _ends_with_semicolon(code: str) -> bool:
    """True when the last Python token of ``code`` (comments aside) is ``;``."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    skipped = (tokenize.ENDMARKER, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    for token in reversed(tokens):
        if token.type not in skipped:
            return token.type == tokenize.OP and token.string == ";"
    return False


try:
    from IPython.core.magic import output_can_be_silenced
except ImportError:  # IPython 7 (checked: 7.34, Colab's, lacks it; 8.12 has it). Its
    # display hook looks for `;` only in the transformed cell, which reads
    # `get_ipython().run_line_magic(...)` and never ends in one. So the magic itself
    # drops its value, as IPython 8 does for a magic marked with this decorator.

    def output_can_be_silenced(magic_func: _Magic) -> _Magic:
        """Return None instead of the magic's value when its code ends with ``;``."""

        @functools.wraps(magic_func)
        def silenced_by_semicolon(self: Any, line: str, *cell: Any) -> Any:
            __tracebackhide__ = True  # the user's traceback shows their cell, not this
            result = magic_func(self, line, *cell)
            code = cell[0] if cell and cell[0] is not None else line
            return None if _ends_with_semicolon(code) else result

        return silenced_by_semicolon  # type: ignore[return-value]
