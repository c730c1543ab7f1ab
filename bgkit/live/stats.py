"""Rolling statistics of the live loop: percentiles of recent timings, and events per second."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["FPS_WINDOW_S", "RateMeter", "RollingStats", "STATS_WINDOW", "is_number", "rounded"]

#: How many recent frames the percentiles are taken over.
STATS_WINDOW = 120
#: Frames per second are counted over this many recent seconds.
FPS_WINDOW_S = 2.0


class RollingStats:
    """Recent values of one measurement (last ``window`` values): percentiles and mean."""

    def __init__(self, window: int = STATS_WINDOW) -> None:
        self._values: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        if value is not None and math.isfinite(value):
            self._values.append(float(value))

    def extend(self, values: Iterable[float]) -> None:
        for v in values:
            self.add(v)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        return float(np.percentile(np.fromiter(self._values, float), q))

    def mean(self) -> float | None:
        return float(np.mean(self._values)) if self._values else None

    def clear(self) -> None:
        self._values.clear()


class RateMeter:
    """Events per second over the last ``window_s`` seconds (or since the meter started, if later)."""

    def __init__(self, window_s: float = FPS_WINDOW_S, clock: Callable[[], float] = time.perf_counter) -> None:
        self.window_s = window_s
        self.clock = clock
        self._times: deque[float] = deque()
        self._start = clock()

    def tick(self) -> None:
        self._times.append(self.clock())
        self._trim()

    def _trim(self) -> None:
        cutoff = self.clock() - self.window_s
        while self._times and self._times[0] < cutoff:
            self._times.popleft()

    def rate(self) -> float:
        self._trim()
        if not self._times:
            return 0.0
        span = min(self.window_s, self.clock() - self._start)
        return len(self._times) / max(span, 1e-3)

    def clear(self) -> None:
        self._times.clear()
        self._start = self.clock()


def is_number(x: Any) -> bool:
    """True for a finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def rounded(x: float | None, nd: int = 1) -> float | None:
    """``round(x, nd)``, None stays None."""
    return None if x is None else round(x, nd)


