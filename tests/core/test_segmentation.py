"""bgkit.core.segmentation: the Segmentation result, the soft alpha and the internal-resolution rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bgkit import INTERNAL_RESOLUTIONS, Segmentation, resolve_internal_resolution, soft_alpha

PROBS = arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.floats(0, 1, width=32))


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


@given(probs=PROBS, threshold=st.floats(0, 1))
def test_mask_is_probabilities_above_threshold(probs, threshold):
    s = Segmentation.from_probabilities(probs, threshold)
    assert s.mask.dtype == np.uint8 and s.mask.shape == probs.shape
    assert (s.height, s.width) == probs.shape
    np.testing.assert_array_equal(s.mask == 1, probs > threshold)
    assert s.data is s.mask


@settings(max_examples=60, deadline=None)
@given(probs=PROBS, threshold=st.floats(0, 1), softness=st.floats(0, 8))
def test_soft_alpha_is_in_0_1_and_on_the_right_side_of_the_threshold(probs, threshold, softness):
    a = soft_alpha(torch.from_numpy(probs), threshold, softness).numpy()
    assert a.dtype == np.float32 and a.shape == probs.shape
    assert (a >= 0).all() and (a <= 1).all()
    np.testing.assert_array_equal(a > 0.5, probs > threshold)


def test_soft_alpha_is_a_ramp_of_the_asked_width_across_the_edge():
    # a probability rising 0.05 per pixel: the edge at 0.5 is at x = 10; a 4 px ramp spans x = 8..12
    p = torch.arange(21, dtype=torch.float32).mul(0.05).expand(3, 21).contiguous()
    a = soft_alpha(p, 0.5, softness=4.0)[1].numpy()
    np.testing.assert_allclose(a[8:13], [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-5)
    assert (a[:8] == 0).all() and (a[13:] == 1).all()
    # softness 0: the binary mask
    np.testing.assert_array_equal(soft_alpha(p, 0.5, 0.0).numpy(), (p > 0.5).float().numpy())


def test_segmentation_holds_tensors_and_gives_numpy_once():
    p = torch.rand(4, 5)
    s = Segmentation(p, p > 0.5, p, threshold=0.5, model="m", model_input_size=(2, 3))
    assert isinstance(s.probabilities, np.ndarray) and s.probabilities is s.probabilities
    assert not s.probabilities.flags.writeable
    assert s.tensor("probabilities") is p
    assert s.model_input_size == (2, 3) and "5x4" in repr(s)
    assert s.foreground is None
    with pytest.raises(ValueError, match="no foreground"):
        s.tensor("foreground")


def test_shape_mismatch_and_bad_threshold_are_rejected():
    with pytest.raises(ValueError, match="must have the shape of probabilities"):
        Segmentation(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        Segmentation.from_probabilities(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="threshold must be in"):
        Segmentation.from_probabilities(np.zeros((2, 3)), threshold=1.5)


@settings(max_examples=40, deadline=None)
@given(probs=PROBS, threshold=st.floats(0.05, 0.95), softness=st.floats(0.1, 8), data=st.data())
def test_soft_alpha_of_a_tile_with_its_margin_is_the_frames(probs, threshold, softness, data):
    # soft_alpha_padded on a crop plus its margin gives the whole frame's pixels there
    import math

    from bgkit.core.segmentation import _replicate, soft_alpha_padded

    p = torch.from_numpy(probs)
    h, w = p.shape
    y0, x0 = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    y1, x1 = data.draw(st.integers(y0 + 1, h)), data.draw(st.integers(x0 + 1, w))
    m = int(math.ceil(softness / 2)) + 1
    whole = soft_alpha(p, threshold, softness)
    padded = _replicate(p, m)
    tile = padded[y0:y1 + 2 * m, x0:x1 + 2 * m]
    got = soft_alpha_padded(tile, tile > threshold, threshold, softness)
    if min(h, w) >= 2:
        torch.testing.assert_close(got, whole[y0:y1, x0:x1], rtol=0, atol=0)


def test_an_alpha_given_as_a_function_is_made_once_when_first_read():
    probs = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    calls = []

    def make():
        calls.append(1)
        return soft_alpha(torch.from_numpy(probs), 0.5)

    seg = Segmentation(probs, alpha=make)
    assert calls == [] and seg.mask.shape == (6, 8)  # the mask does not need it
    np.testing.assert_array_equal(seg.alpha, Segmentation(probs).alpha)
    np.testing.assert_array_equal(seg.tensor("alpha").numpy(), seg.alpha)
    assert calls == [1]
    bad = Segmentation(probs, alpha=lambda: np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match=r"alpha \(3, 3\) must have the shape of probabilities \(6, 8\)"):
        bad.alpha
    with pytest.raises(ValueError, match="unknown field 'mask2'"):
        seg.tensor("mask2")
