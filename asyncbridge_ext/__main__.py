"""``python -m asyncbridge_ext enable|disable|status`` (see :mod:`asyncbridge_ext.autoload.cli`)."""

import sys

from .autoload.cli import main

if __name__ == "__main__":
    sys.exit(main())
