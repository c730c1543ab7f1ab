"""OpenMP wait policy, set before torch loads (imported first by ``bgkit/__init__.py``).

After each parallel op, torch's OpenMP workers busy-wait for the next one: several milliseconds
with GNU OpenMP's defaults (LLVM's libomp: up to 200 ms). When ONNX Runtime runs the network
right after a torch op (resize, normalise, compositing), those spinning workers take a core from
it: measured on a 2-core CPU, DeepLabV3 in ONNX Runtime went from 12.4 to 15-18 ms per frame.
Capping the spin (``GOMP_SPINCOUNT`` / ``KMP_BLOCKTIME``) removes that and does not slow torch's
own network runs (eager end to end 31.9 vs 32.4 ms, within noise).

Only defaults: a value already in the environment is kept, and nothing changes when torch was
imported before bgkit (the OpenMP runtime reads these once, when it loads). Set them yourself
in that case, e.g. ``GOMP_SPINCOUNT=1000 python app.py``.
"""

from __future__ import annotations

import os
import sys

OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}


def set_openmp_wait_defaults() -> bool:
    """Set :data:`OPENMP_DEFAULTS` where unset; False (and no change) if torch is already loaded."""
    if "torch" in sys.modules:
        return False
    for key, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return True


set_openmp_wait_defaults()
