"""bgkit.core.colors: one colour parser for settings, compositing, the CLI and the widgets."""

from __future__ import annotations

import numpy as np
import pytest

from bgkit.core.colors import hex_rgb, is_color, parse_color


# --- colours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "colour, expected",
    [
        ((1, 2, 3), (1, 2, 3, 255)),
        ([1, 2, 3, 4], (1, 2, 3, 4)),
        (np.array([9, 8, 7], np.uint8), (9, 8, 7, 255)),
        ("#ff8000", (255, 128, 0, 255)),
        ("#FF800080", (255, 128, 0, 128)),
        ("#f80", (255, 136, 0, 255)),
        ({"r": 1, "g": 2, "b": 3, "a": 4}, (1, 2, 3, 4)),
        ({"r": 1, "g": 2, "b": 3}, (1, 2, 3, 255)),
        ((0.0, 255.0, 10.0), (0, 255, 10, 255)),
    ],
)
def test_parse_color(colour, expected):
    assert parse_color(colour) == expected


@pytest.mark.parametrize(
    "colour, message",
    [
        ((1, 2), "3 \\(RGB\\) or 4 \\(RGBA\\) components"),
        ((1, 2, 3, 4, 5), "3 \\(RGB\\) or 4 \\(RGBA\\) components"),
        ((0, 0, 256), "integers 0..255"),
        ((0, -1, 0), "integers 0..255"),
        ((0, 0.5, 0), "integers 0..255"),
        ((True, 0, 0), "integers 0..255"),
        ("red", "not a colour string"),
        ("#12345", "not a colour string"),
        ("#gggggg", "not a colour string"),
        (12, "tuple of ints"),
        (None, "tuple of ints"),
        ({"r": 1}, "keys 'r', 'g', 'b'"),
    ],
)
def test_bad_colours(colour, message):
    with pytest.raises(ValueError, match=message):
        parse_color(colour)


def test_command_line_triples_and_helpers():
    assert parse_color("1,2,3") == (1, 2, 3, 255) and parse_color(" 1, 2, 3, 4") == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="r,g,b"):
        parse_color("1,2,x")
    assert hex_rgb((255, 128, 0, 7)) == "#ff8000"
    assert is_color("#fff") and is_color((1, 2, 3)) and not is_color("beach.jpg") and not is_color(np.zeros((2, 2, 3)))
