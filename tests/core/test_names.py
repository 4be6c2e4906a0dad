"""name_of: how errors and reports name what they were handed."""

from __future__ import annotations

import functools
import signal

from asyncbridge_ext.core.names import name_of


def outer() -> object:
    def inner() -> None:
        pass

    return inner


class Handler:
    def method(self) -> None:
        pass


def test_a_function_is_named_by_its_qualified_name() -> None:
    assert name_of(Handler.method) == "Handler.method"
    assert name_of(Handler().method, with_module=True) == f"{__name__}.Handler.method"


def test_a_function_made_inside_another_is_named_by_its_own_name_with_its_module() -> None:
    assert name_of(outer()) == "outer.<locals>.inner"
    assert name_of(outer(), with_module=True) == f"{__name__}.inner"


def test_something_without_a_name_is_named_by_its_type_or_its_repr() -> None:
    assert name_of(functools.partial(abs, 1)) == "partial object"
    assert name_of(signal.SIG_DFL, with_module=True) == repr(signal.SIG_DFL)
    assert name_of(None, with_module=True) == "None"
