"""Tests for bgkit.filters: Gaussian blur (full and reduced resolution) and masked blur."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from bgkit.ops.filters import gaussian_blur, kernel_radius, masked_blur, reduction_factor

SAMPLE = Path(__file__).resolve().parents[2] / "bgkit" / "io" / "data" / "astronaut.jpg"
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Straightforward float64 separable Gaussian with edge replication (the spec)."""
    img = np.asarray(image, dtype=np.float64)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[:, :, None]
    r = kernel_radius(sigma)
    x = np.arange(-r, r + 1)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    k /= k.sum()
    p = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    v = sum(k[i] * p[i:i + h] for i in range(2 * r + 1))
    out = sum(k[i] * v[:, i:i + w] for i in range(2 * r + 1))
    return out[:, :, 0] if squeeze else out


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    """A natural photo (the bundled astronaut), 320x240 RGB uint8."""
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB").resize((320, 240), Image.Resampling.BILINEAR)).copy()


# --- exact cases --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4)])
def test_sigma_zero_is_an_exact_copy(dtype, shape):
    rng = np.random.default_rng(0)
    img = (rng.random(shape) * 255).astype(dtype)
    out = gaussian_blur(img, 0)
    assert out is not img
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("sigma", [0.5, 1, 2.5, 3, 4, 7.5, 12, 20])
@pytest.mark.parametrize("shape", [(31, 45), (31, 45, 3), (30, 40, 4)])
def test_shape_and_dtype_are_kept(sigma, shape):
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, shape, dtype=np.uint8)
    f32 = u8.astype(np.float32) / 255
    f64 = u8.astype(np.float64)
    for img in (u8, f32, f64):
        out = gaussian_blur(img, sigma)
        assert out.shape == img.shape and out.dtype == img.dtype
        assert out.flags.c_contiguous


@pytest.mark.parametrize("sigma", [0.3, 1, 2, 3])
def test_full_resolution_matches_reference(sigma):
    rng = np.random.default_rng(2)
    img = rng.random((23, 37, 3)).astype(np.float32) * 255
    np.testing.assert_allclose(gaussian_blur(img, sigma), reference_blur(img, sigma), atol=2e-3)
    u8 = img.astype(np.uint8)
    diff = np.abs(gaussian_blur(u8, sigma).astype(int) - np.round(reference_blur(u8, sigma)))
    assert diff.max() <= 1


def test_uint8_output_is_rounded_not_truncated():
    img = np.zeros((9, 9), np.uint8)
    img[4, 4] = 255
    out = gaussian_blur(img, 1)
    np.testing.assert_array_equal(out, np.clip(np.floor(reference_blur(img, 1) + 0.5), 0, 255))


def test_edges_are_replicated():
    # Blurring equals blurring the edge-padded image and cropping it back.
    rng = np.random.default_rng(3)
    img = rng.random((40, 50, 3)).astype(np.float32)
    for sigma in (2, 6, 15):
        m = kernel_radius(sigma) + 2 * reduction_factor(sigma) + 4
        big = np.pad(img, ((m, m), (m, m), (0, 0)), mode="edge")
        ref = gaussian_blur(big, sigma)[m:-m, m:-m]
        tol = 1e-5 if reduction_factor(sigma) == 1 else 0.02
        np.testing.assert_allclose(gaussian_blur(img, sigma), ref, atol=tol)


# --- reduced-resolution path -----------------------------------------------------------


def test_reduction_factor_keeps_at_least_two_pixels_of_sigma():
    assert reduction_factor(0) == reduction_factor(3) == 1
    for sigma in np.arange(3.25, 20.01, 0.25):
        f = reduction_factor(sigma)
        assert f >= 1 and sigma / f >= 2


@pytest.mark.parametrize("sigma", [4, 5, 6.5, 9, 13, 20])
def test_reduced_resolution_is_visually_the_same(natural, sigma):
    assert reduction_factor(sigma) > 1
    ref = reference_blur(natural, sigma)
    out = gaussian_blur(natural, sigma).astype(np.float64)
    err = np.abs(out - ref)
    assert err.mean() < 1.5, f"mean abs error {err.mean():.3f}/255"
    assert err.max() < 8
    f32 = natural.astype(np.float32) / 255
    assert np.abs(gaussian_blur(f32, sigma) - ref / 255).mean() < 1.5 / 255


@pytest.mark.parametrize("sigma", [4, 7, 10, 20])
def test_reduced_resolution_has_the_requested_spread(sigma):
    # Phase-averaged variance of the impulse response is sigma^2; its mean is not shifted.
    f = reduction_factor(sigma)
    n = 8 * int(sigma) + 21
    variances, centres = [], []
    for phase in range(f):
        img = np.zeros((n, n), np.float32)
        c = n // 2 - f // 2 + phase
        img[n // 2, c] = 1.0
        prof = gaussian_blur(img, sigma).sum(axis=0)
        x = np.arange(n) - c
        centres.append((prof * x).sum() / prof.sum())
        variances.append((prof * x * x).sum() / prof.sum())
    assert np.sqrt(np.mean(variances)) == pytest.approx(sigma, rel=0.02)
    assert abs(np.mean(centres)) < 0.05


@pytest.mark.parametrize("sigma", [4, 9, 20])
@pytest.mark.parametrize("size", [(50, 61), (48, 60), (7, 3), (1, 1)])
def test_reduced_resolution_keeps_linear_ramps(sigma, size):
    # A linear ramp is unchanged by a symmetric blur away from the edges: no shift.
    h, w = size
    ramp = (np.arange(w, dtype=np.float32)[None, :] * 2 + np.arange(h, dtype=np.float32)[:, None] * 3)
    out = gaussian_blur(ramp, sigma)
    m = kernel_radius(sigma) + reduction_factor(sigma)
    if h > 2 * m and w > 2 * m:
        np.testing.assert_allclose(out[m:-m, m:-m], ramp[m:-m, m:-m], atol=1e-3)
    assert out.shape == ramp.shape and np.isfinite(out).all()


# --- properties ----------------------------------------------------------------------

sigmas = st.sampled_from([0.0, 0.4, 1.0, 2.0, 3.0, 3.5, 4.0, 6.0, 9.0, 20.0])


@PROPS
@given(
    h=st.integers(1, 24), w=st.integers(1, 24), c=st.sampled_from([None, 1, 3, 4]),
    value=st.integers(0, 255), sigma=sigmas,
)
def test_constant_image_is_unchanged(h, w, c, value, sigma):
    shape = (h, w) if c is None else (h, w, c)
    img = np.full(shape, value, np.uint8)
    np.testing.assert_array_equal(gaussian_blur(img, sigma), img)
    f = np.full(shape, value / 255, np.float32)
    np.testing.assert_allclose(gaussian_blur(f, sigma), f, atol=1e-5)


@PROPS
@given(
    patch=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))),
    border=st.integers(0, 255), sigma=st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0]),
)
def test_mean_is_preserved(patch, border, sigma):
    # With a constant margin wider than the kernel nothing leaks out: the mean stays.
    m = kernel_radius(sigma) + 3 * reduction_factor(sigma) + 2
    img = np.pad(patch, ((m, m), (m, m), (0, 0)), constant_values=border)
    out = gaussian_blur(img.astype(np.float32), sigma)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), img.mean(axis=(0, 1)), atol=0.05)
    assert abs(gaussian_blur(img, sigma).astype(float).mean() - img.mean()) < 0.6
    assert out.min() >= img.min() - 1e-3 and out.max() <= img.max() + 1e-3


# --- masked blur ------------------------------------------------------------------------


def test_masked_blur_with_unit_weight_is_gaussian_blur():
    rng = np.random.default_rng(4)
    img = rng.random((30, 40, 3)).astype(np.float32) * 255
    for sigma in (1.5, 8):
        out = masked_blur(img, np.ones((30, 40), np.float32), sigma)
        np.testing.assert_allclose(out, gaussian_blur(img, sigma), atol=0.3)


def test_masked_blur_sigma_zero_and_zero_weight_give_the_image():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (12, 13, 3), dtype=np.uint8)
    w = (rng.random((12, 13)) > 0.5).astype(np.float32)
    np.testing.assert_array_equal(masked_blur(img, w, 0), img)
    np.testing.assert_array_equal(masked_blur(img, np.zeros((12, 13)), 5), img)


def test_masked_blur_ignores_unweighted_pixels():
    # Red person (weight 0) on a blue background: no red anywhere in the result's background.
    img = np.zeros((60, 80, 3), np.uint8)
    img[..., 2] = 255
    person = np.zeros((60, 80), bool)
    person[10:50, 30:50] = True
    img[person] = (255, 0, 0)
    for sigma in (2, 10, 20):
        out = masked_blur(img, ~person, sigma)
        assert out[~person][:, 0].max() <= 1
        assert out[~person][:, 2].min() >= 254
        naive = gaussian_blur(img, sigma)
        assert naive[~person][:, 0].max() > 40  # what the weighting prevents


@PROPS
@given(
    w=arrays(np.float32, st.tuples(st.integers(1, 16), st.integers(1, 16)), elements=st.floats(0, 1, width=32)),
    colour=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    sigma=sigmas,
)
def test_masked_blur_of_a_constant_is_the_constant(w, colour, sigma):
    img = np.empty(w.shape + (3,), np.uint8)
    img[:] = colour
    out = masked_blur(img, w, sigma)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, img)


def test_masked_blur_dtype_and_shape():
    img = np.random.default_rng(6).random((9, 11)).astype(np.float64)
    w = np.ones((9, 11), bool)
    out = masked_blur(img, w, 2)
    assert out.dtype == np.float64 and out.shape == (9, 11)


# --- bad input -------------------------------------------------------------------------


def test_bad_sigma():
    img = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="sigma must be a number >= 0"):
        gaussian_blur(img, -1)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(img, float("nan"))
    with pytest.raises(TypeError, match="sigma must be a number"):
        gaussian_blur(img, "3")
    with pytest.raises(TypeError, match="sigma must be a number"):
        gaussian_blur(img, True)


def test_bad_image():
    with pytest.raises(TypeError, match="numpy array"):
        gaussian_blur([[1, 2], [3, 4]], 1)
    with pytest.raises(TypeError, match="uint8 or floating point"):
        gaussian_blur(np.zeros((4, 4), np.int32), 1)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        gaussian_blur(np.zeros((2, 4, 4, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="empty"):
        gaussian_blur(np.zeros((0, 4), np.uint8), 1)


def test_bad_weight():
    img = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"weight must have shape \(H, W\) = \(4, 5\)"):
        masked_blur(img, np.ones((5, 4)), 1)
    with pytest.raises(ValueError, match="finite values >= 0"):
        masked_blur(img, -np.ones((4, 5)), 1)
    with pytest.raises(ValueError, match="eps"):
        masked_blur(img, np.ones((4, 5)), 1, eps=0)


def test_inputs_are_not_modified_and_read_only_inputs_work():
    rng = np.random.default_rng(7)
    img = rng.random((20, 30, 3)).astype(np.float32)
    w = rng.random((20, 30)).astype(np.float32)
    keep_img, keep_w = img.copy(), w.copy()
    img.flags.writeable = False
    w.flags.writeable = False
    for sigma in (0, 2, 8):
        gaussian_blur(img, sigma)
        masked_blur(img, w, sigma)
        gaussian_blur(img[:, ::-1], sigma)  # negative strides
    np.testing.assert_array_equal(img, keep_img)
    np.testing.assert_array_equal(w, keep_w)


# --- an effect's background blur (reduced coarser, normalised at the reduced size) ---------------


def test_effect_reduction_factor():
    from bgkit.ops.filters import effect_reduction_factor

    assert [effect_reduction_factor(s) for s in (0, 1, 2.9, 3, 4, 4.5, 8, 20)] == [1, 1, 1, 2, 2, 3, 5, 13]


@pytest.mark.parametrize("sigma", [2, 3, 5, 8, 20])
def test_background_blur_is_the_masked_blur_to_a_grey_level(natural, sigma):
    import torch

    from bgkit.ops.filters import background_blur_hwc, effect_reduction_factor, masked_blur_hwc

    h, w = natural.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    person = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2).astype(np.float32)
    x = torch.from_numpy(natural.astype(np.float32))
    weight = torch.from_numpy(1.0 - person)
    out, den = background_blur_hwc(x, weight, sigma, weights_out=True)
    ref, ref_den = masked_blur_hwc(x, weight, sigma)
    visible = person == 0  # under the person the background is never seen
    err = np.abs(out.numpy() - ref.numpy())[visible]
    if effect_reduction_factor(sigma) == 1:
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    else:
        assert err.mean() < 1.0 and err.max() < 12, (err.mean(), err.max())
    np.testing.assert_allclose(den.numpy(), ref_den.numpy(), atol=0.02)
    assert background_blur_hwc(x, weight, sigma)[1] is None


def test_background_blur_of_a_flat_background_is_flat():
    import torch

    from bgkit.ops.filters import background_blur_hwc

    x = torch.full((60, 80, 3), 37.0)
    x[20:40, 30:50] = 250.0  # the person, bright: none of it may leak into the background
    weight = torch.ones(60, 80)
    weight[20:40, 30:50] = 0.0
    out, _ = background_blur_hwc(x, weight, 6.0)
    np.testing.assert_allclose(out.numpy(), 37.0, atol=1e-3)
