"""Nested runs: ``asyncio.run`` and ``run_until_complete`` inside a running loop, IPython-free.

:data:`~.redirect.NestedRunRedirect` wraps asyncio's entry points and makes the one
routing decision for every mode; :mod:`._serve` runs a call with the running loop paused,
or refuses it; :mod:`.in_force` tells whether the wrappers are still the ones in force.
Imports :mod:`asyncbridge_ext.core` only.
"""
