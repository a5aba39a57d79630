"""``python -m tsgate``: the same command line as ``tsgate`` (see :mod:`tsgate.cli`)."""

from __future__ import annotations

import sys

from tsgate.cli import main

if __name__ == "__main__":
    sys.exit(main())
