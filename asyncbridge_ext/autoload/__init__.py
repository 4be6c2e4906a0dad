"""Auto-loading through IPython's config files: ``python -m asyncbridge_ext enable|disable|status``.

:mod:`.cli` parses and prints; :mod:`.enable` writes and removes our block in one config
directory; :mod:`.status` reads which files IPython and Jupyter kernels load, and what
they load. Imports :mod:`asyncbridge_ext.core` only (traitlets' config loader lazily).
"""
