"""Process-wide runtime settings made once, when bgkit is imported (first thing in ``__init__``).

Two measured problems of running a network and torch image ops back to back, frame after frame,
on a small CPU; both are process settings, so bgkit sets them and says so here and in the
README. ``BGKIT_NO_PROCESS_TUNING=1`` in the environment skips both.

1. OpenMP busy-waiting. After each parallel op, torch's OpenMP workers spin for the next one:
   several milliseconds with GNU OpenMP's defaults (LLVM's libomp: up to 200 ms). When OpenVINO
   or ONNX Runtime runs the network right after a torch op (resize, normalise, compositing),
   those spinning workers take a core from it: on a 2-core CPU, DeepLabV3 in ONNX Runtime went
   from 12.4 to 15-18 ms per frame. ``GOMP_SPINCOUNT`` / ``KMP_BLOCKTIME`` cap the spin; torch's
   own network runs are not slower (eager end to end 31.9 vs 32.4 ms, within noise). These are
   read once, when the OpenMP runtime loads: they are set only where unset and only if torch is
   not loaded yet (otherwise set them yourself, e.g. ``GOMP_SPINCOUNT=1000 python app.py``).

2. Page faults from the allocator. A frame allocates and frees a few megabytes of buffers of
   changing sizes; glibc's malloc maps big blocks afresh and hands the top of its heap back to
   the system after each frame, then takes it again, one page fault per 4 KiB: 300 to 1,800
   faults per 640x480 frame (selfie model at "low" resolution: 3.3-3.7 ms end to end without
   them, 7.3-9.7 ms with). Serving blocks up to 32 MiB from the heap (``M_MMAP_THRESHOLD``) and
   keeping 64 MiB of heap top (``M_TOP_PAD``) stops that; RSS stays up to that much higher.
   (The pad alone is worse than nothing: it also freezes the mmap threshold at 128 KiB, and
   eager DeepLabV3 then faults 14,000 times a frame.)
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}
#: glibc mallopt parameters: name -> (number in malloc.h, value in bytes)
MALLOPT = {"M_MMAP_THRESHOLD": (-3, 32 << 20), "M_TOP_PAD": (-2, 64 << 20)}
OPT_OUT = "BGKIT_NO_PROCESS_TUNING"


def set_openmp_wait_defaults() -> bool:
    """Set :data:`OPENMP_DEFAULTS` where unset; False (and no change) if torch is already loaded."""
    if "torch" in sys.modules:
        return False
    for key, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return True


def set_malloc_options() -> bool:
    """Apply :data:`MALLOPT` to glibc's malloc; False where the C library is not glibc."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
        return all(bool(mallopt(number, value)) for number, value in MALLOPT.values())
    except (OSError, AttributeError):
        return False


def tune_process() -> dict[str, bool]:
    """Apply both settings (unless ``$BGKIT_NO_PROCESS_TUNING`` is set); says which took effect."""
    if os.environ.get(OPT_OUT, "") not in ("", "0"):
        return {"openmp_wait": False, "malloc": False}
    return {"openmp_wait": set_openmp_wait_defaults(), "malloc": set_malloc_options()}


TUNED = tune_process()
