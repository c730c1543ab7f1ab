"""``python -m bgkit.bench``: the speed benchmark (see :mod:`bgkit.eval.bench`)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from bgkit.tuning import tune_process

    tune_process()  # before torch loads, or OpenMP's wait cannot be capped (see bgkit.tuning)
    from bgkit.eval.bench import main

    sys.exit(main())
