"""``python -m bgkit.bench``: the speed benchmark (see :mod:`bgkit.eval.bench`)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from bgkit.eval.bench import main

    sys.exit(main())
