"""Colours: one parser for every place a colour is given (settings, compositing, the CLI, widgets)."""

from __future__ import annotations

import math
import re
from numbers import Real
from typing import Any, Mapping, Sequence, Union

import numpy as np

__all__ = ["Color", "RGBA", "hex_rgb", "is_color", "parse_color"]

#: A colour: RGBA/RGB ints 0..255, '#rrggbb[aa]' / '#rgb[a]' string, or {'r','g','b'[,'a']} dict.
Color = Union[Sequence[int], str, Mapping[str, int]]
RGBA = tuple[int, int, int, int]

_HEX = re.compile(r"#([0-9a-fA-F]+)")


def parse_color(color: Color, name: str = "color") -> RGBA:
    """Return ``color`` as an ``(r, g, b, a)`` tuple of ints in 0..255.

    Accepts ``(r, g, b)`` (opaque) or ``(r, g, b, a)`` integers in 0..255; ``'#rrggbb'``,
    ``'#rrggbbaa'``, ``'#rgb'`` or ``'#rgba'``; ``'r,g,b[,a]'`` (as typed on a command line); or
    BodyPix-style ``{'r':, 'g':, 'b':[, 'a':]}``. Anything else raises ``ValueError`` naming
    ``name`` and the value.
    """
    if isinstance(color, str):
        text = color.strip()
        if "," in text and not text.startswith("#"):
            parts = text.split(",")
            try:
                return parse_color([float(p) for p in parts], name)
            except ValueError:
                raise ValueError(f"{name} {color!r} is not a colour; use 'r,g,b[,a]' with integers 0..255") from None
        m = _HEX.fullmatch(text)
        digits = m.group(1) if m else ""
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        if len(digits) not in (6, 8):
            raise ValueError(f"{name} {color!r} is not a colour string; use '#rrggbb' or '#rrggbbaa' (hex digits)")
        vals = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
        return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 255)
    if isinstance(color, Mapping):
        try:
            seq: Any = [color["r"], color["g"], color["b"], color.get("a", 255)]
        except KeyError:
            raise ValueError(f"{name} dict must have keys 'r', 'g', 'b' (and optionally 'a'); got {dict(color)!r}") from None
    elif isinstance(color, (tuple, list, np.ndarray)):
        seq = list(np.asarray(color).ravel()) if isinstance(color, np.ndarray) else list(color)
    else:
        raise ValueError(
            f"{name} must be an (r, g, b[, a]) tuple of ints 0..255 or a '#rrggbb[aa]' string; got {type(color).__name__}"
        )
    if len(seq) not in (3, 4):
        raise ValueError(f"{name} must have 3 (RGB) or 4 (RGBA) components; got {len(seq)}: {color!r}")
    out = []
    for v in seq:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Real, np.number)):
            raise ValueError(f"{name} components must be integers 0..255; got {color!r}")
        fv = float(v)
        if not math.isfinite(fv) or fv != int(fv) or not 0 <= fv <= 255:
            raise ValueError(f"{name} components must be integers 0..255; got {color!r}")
        out.append(int(fv))
    if len(out) == 3:
        out.append(255)
    return (out[0], out[1], out[2], out[3])


def is_color(x: object) -> bool:
    """True if ``x`` is meant as a colour rather than a picture (strings must start with '#';
    other strings are file paths)."""
    if isinstance(x, str):
        return x.strip().startswith("#")
    if isinstance(x, (tuple, list, Mapping)):
        return True
    return isinstance(x, np.ndarray) and x.ndim == 1


def hex_rgb(rgba: Sequence[int]) -> str:
    """``'#rrggbb'`` of an RGB(A) colour (the alpha is dropped), e.g. for a colour picker."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgba[:3]))
