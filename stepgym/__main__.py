"""``python -m stepgym``: the same command as ``stepgym``."""

from __future__ import annotations

import sys

from stepgym.cli import main

if __name__ == "__main__":
    sys.exit(main())
