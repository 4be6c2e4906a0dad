"""``python -m asyncbridge_ext enable|disable|status`` (see :mod:`asyncbridge_ext.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
