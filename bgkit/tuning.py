"""Process-wide runtime settings for a process that runs frames back to back: an explicit call.

``import bgkit`` changes nothing in the host process. :func:`tune_process` is called by the
programs whose whole process bgkit owns -- the command line (``bgkit ...``), the benchmark
(``python -m bgkit.bench``) and the live camera widget (which runs frame after frame in its
kernel) -- and by anyone who wants it; each call logs what it did. ``BGKIT_PROCESS_TUNING=1`` in
the environment makes ``import bgkit`` call it (opt-in); ``BGKIT_NO_PROCESS_TUNING=1`` makes
every call a no-op.

Two measured problems of running a network and torch image ops back to back, frame after frame,
on a small CPU:

1. OpenMP busy-waiting. After each parallel op, torch's OpenMP workers spin for the next one:
   several milliseconds with GNU OpenMP's defaults (LLVM's libomp: up to 200 ms). When OpenVINO
   or ONNX Runtime runs the network right after a torch op (resize, normalise, compositing),
   those spinning workers take a core from it: on a 2-core CPU, DeepLabV3 in ONNX Runtime went
   from 12.4 to 15-18 ms per frame. ``GOMP_SPINCOUNT`` / ``KMP_BLOCKTIME`` cap the spin. They are
   read once, when the OpenMP runtime loads, so they are set only where unset and only if torch
   is not loaded yet (the command line calls this before importing torch); otherwise set them
   yourself, e.g. ``GOMP_SPINCOUNT=1000 jupyter lab``.

2. Page faults from the allocator. A frame allocates and frees a few megabytes of buffers of
   changing sizes; glibc's malloc maps big blocks afresh and hands the top of its heap back to
   the system after each frame, then takes it again, one page fault per 4 KiB: 300 to 1,800
   faults per 640x480 frame (selfie model at "low" resolution: 3.3-3.7 ms end to end without
   them, 7.3-9.7 ms with). Serving blocks up to 32 MiB from the heap (``M_MMAP_THRESHOLD``) and
   keeping 64 MiB of heap top (``M_TOP_PAD``) stops that; the process keeps up to that much
   more memory after freeing big arrays (measured: 480 MiB more after freeing twenty 24 MiB
   arrays), which is why it is not done on import.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

__all__ = ["MALLOPT", "OPENMP_DEFAULTS", "tune_process"]

log = logging.getLogger(__name__)

OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}
#: glibc mallopt parameters: name -> (number in malloc.h, value in bytes)
MALLOPT = {"M_MMAP_THRESHOLD": (-3, 32 << 20), "M_TOP_PAD": (-2, 64 << 20)}
OPT_OUT = "BGKIT_NO_PROCESS_TUNING"
OPT_IN = "BGKIT_PROCESS_TUNING"

_done: dict[str, bool] | None = None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


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


def tune_process(openmp: bool = True, malloc: bool = True) -> dict[str, bool]:
    """Apply the two settings (see the module doc) once per process; says which took effect.

    Does nothing where ``$BGKIT_NO_PROCESS_TUNING`` is set. Returns ``{"openmp_wait": bool,
    "malloc": bool}``: True where the setting is now in effect.
    """
    global _done
    if _flag(OPT_OUT):
        return {"openmp_wait": False, "malloc": False}
    if _done is None:
        _done = {"openmp_wait": False, "malloc": False}
    if openmp and not _done["openmp_wait"]:
        _done["openmp_wait"] = set_openmp_wait_defaults()
    if malloc and not _done["malloc"]:
        _done["malloc"] = set_malloc_options()
    log.info("bgkit: process tuning: OpenMP wait capped: %s; malloc keeps freed memory: %s",
             _done["openmp_wait"], _done["malloc"])
    return dict(_done)
