"""bgkit.io.sample: the bundled public-domain photo and the made-up backdrop."""

from __future__ import annotations

import numpy as np
import pytest

from bgkit.io.sample import sample_backdrop, sample_image, sample_image_path


def test_sample_image_and_backdrop():
    p = sample_image_path()
    assert p.is_file() and p.suffix == ".jpg"
    a, b = sample_image(), sample_image()
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    a[:] = 0  # a fresh copy each time
    assert b.any()
    bg = sample_backdrop(30, 50)
    assert bg.shape == (30, 50, 3) and bg.dtype == np.uint8 and bg.std() > 5
    with pytest.raises(ValueError):
        sample_backdrop(0, 10)
