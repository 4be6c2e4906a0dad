"""Everything that needs IPython: the extension, its options, magics and per-cell hooks.

Imported only by ``%load_ext asyncbridge_ext`` (see :func:`asyncbridge_ext.load_ipython_extension`),
never by ``import asyncbridge_ext``. Imports :mod:`asyncbridge_ext.nested` and
:mod:`asyncbridge_ext.core`; nothing imports it back.
"""
