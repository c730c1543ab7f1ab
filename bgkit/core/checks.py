"""Argument checks shared by every layer: one wording for every "bad value" error.

Each check returns the value in its canonical type, or raises ``TypeError`` (wrong kind) or
``ValueError`` (wrong value) with a message that names the argument, the value it got and what
it accepts.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = ["check_bool", "check_int", "check_number", "interval"]


def interval(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> str:
    """``lo``..``hi`` written as an interval: ``[0, 1)``, ``(0, 20]``, ``>= 0`` ..."""
    if lo is None and hi is None:
        return "any number"
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def check_number(
    value: object,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> float:
    """``value`` as a finite float within ``lo``..``hi`` (bounds included unless ``*_open``).

    Raises ``TypeError`` for a non-number (``bool`` included) and ``ValueError`` for NaN,
    infinity or a value out of range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.integer, np.floating)):
        span = interval(lo, hi, lo_open, hi_open)
        raise TypeError(f"{name} must be a number {'in ' if lo is not None and hi is not None else ''}{span}; got {value!r}")
    v = float(value)  # type: ignore[arg-type]
    ok = math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        span = interval(lo, hi, lo_open, hi_open)
        what = f"in {span}" if lo is not None and hi is not None else f"a number {span}"
        raise ValueError(f"{name} must be {what}{' ' + unit if unit else ''}; got {value!r}")
    return v


def check_int(value: object, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int within ``lo``..``hi`` (a float with no fractional part is accepted)."""
    v = check_number(value, name, lo, hi)
    if v != int(v):
        raise ValueError(f"{name} must be a whole number; got {value!r}")
    return int(v)


def check_bool(value: object, name: str) -> bool:
    """``value`` as a bool: only ``True``/``False`` (and numpy's) are accepted, not 0/1 or strings."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)
