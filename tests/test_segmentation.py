"""bgkit.segmentation: the Segmentation result and the internal-resolution rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bgkit import INTERNAL_RESOLUTIONS, Segmentation, resolve_internal_resolution


def test_named_resolutions_match_bodypix():
    assert INTERNAL_RESOLUTIONS == {"low": 0.25, "medium": 0.5, "high": 0.75, "full": 1.0}
    assert resolve_internal_resolution("MEDIUM") == 0.5
    assert resolve_internal_resolution(2) == 2.0
    assert resolve_internal_resolution(0.1) == 0.1


@pytest.mark.parametrize("bad", [0, -0.5, 2.01, float("nan"), float("inf"), "huge", ""])
def test_bad_resolutions_are_value_errors(bad):
    with pytest.raises(ValueError, match="internal_resolution"):
        resolve_internal_resolution(bad)


@pytest.mark.parametrize("bad", [None, True, [0.5], object()])
def test_bad_resolution_types_are_type_errors(bad):
    with pytest.raises(TypeError, match="internal_resolution"):
        resolve_internal_resolution(bad)


@given(
    probs=arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.floats(0, 1, width=32)),
    threshold=st.floats(0, 1),
)
def test_mask_is_probabilities_above_threshold(probs, threshold):
    s = Segmentation.from_probabilities(probs, threshold)
    assert s.mask.dtype == np.uint8 and s.mask.shape == probs.shape
    assert (s.height, s.width) == probs.shape
    np.testing.assert_array_equal(s.mask == 1, probs > threshold)
    assert s.data is s.mask


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="must both be"):
        Segmentation(width=3, height=2, probabilities=np.zeros((2, 3), np.float32), mask=np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        Segmentation.from_probabilities(np.zeros((2, 3, 1)))
