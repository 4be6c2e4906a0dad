# >>> asyncbridge_ext >>>
# Added by `python -m asyncbridge_ext enable`; `python -m asyncbridge_ext disable` removes it.
# `.append` (not `= [...]`) keeps the extensions set in lower-priority config files.
c.InteractiveShellApp.extensions.append("asyncbridge_ext")  # noqa: F821
# <<< asyncbridge_ext <<<
