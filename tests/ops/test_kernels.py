"""The fused CPU kernels (numba) give the torch definitions' results: probabilities and alphas to
rounding, pictures to one grey level; every effect through the pipeline with and without them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

pytest.importorskip("numba", reason="the kernels need numba (pip install 'bgkit[fast]')")
if os.environ.get("BGKIT_NO_NUMBA", "").strip() not in ("", "0"):
    pytest.skip("BGKIT_NO_NUMBA is set: the kernels are off, nothing to compare", allow_module_level=True)

from bgkit.core.segmentation import soft_alpha  # noqa: E402
from bgkit.ops import compositing as C  # noqa: E402
from bgkit.ops import filters, kernels  # noqa: E402
from bgkit.ops.refine import apply_coefficients, guided_coefficients, refine_t  # noqa: E402


@pytest.fixture
def torch_only(monkeypatch):
    """Run the block with the kernels off (the torch definitions)."""

    class _Off:
        def __enter__(self):
            monkeypatch.setenv(kernels.OPT_OUT, "1")

        def __exit__(self, *exc):
            monkeypatch.delenv(kernels.OPT_OUT)

    return _Off()


def _scene(h=61, w=83, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    p = 1.0 / (1.0 + np.exp(-(h / 3 - np.hypot(yy - h / 2, xx - w / 2)) / 2.5))
    return torch.from_numpy(img), torch.from_numpy(p.astype(np.float32))


def _close_pictures(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    assert (a.int() - b.int()).abs().max() <= 1


def test_kernels_are_available_here_and_can_be_turned_off(monkeypatch):
    assert kernels.available()
    monkeypatch.setenv(kernels.OPT_OUT, "1")
    assert not kernels.available()
    img, p = _scene()
    assert kernels.blend(img, p, img) is None


@pytest.mark.parametrize("size", [(48, 64), (61, 83), (7, 5)])
def test_apply_guided_is_apply_coefficients(size):
    img, _ = _scene(*size)
    ab = torch.randn(1, 4, 13, 17, generator=torch.Generator().manual_seed(sum(size))) * 0.4 + 0.3
    want = apply_coefficients(ab, img.permute(2, 0, 1)[None].float().div(255.0))[0, 0].clamp(0, 1)
    # torch interpolates with another formula: a few float32 ulps apart, amplified by |a| (up to ~2)
    torch.testing.assert_close(kernels.apply_guided(ab, img), want, atol=5e-6, rtol=0)


@pytest.mark.parametrize("sub", [1, 2])
@pytest.mark.parametrize("r", [1, 2, 5, 40])
def test_guided_coefficients_kernel_is_guided_coefficients(sub, r):
    """The coefficient stage of refine_t: both compute in float64 and agree to float32 rounding."""
    img, p = _scene(64, 96, seed=r)
    guide = img.permute(2, 0, 1)[None].float().div(255.0)
    prob = p[None, None]
    lo = torch.cat([guide, prob], 1)
    if sub == 2:
        rows = lo[..., 0::2, :] + lo[..., 1::2, :]
        lo = (rows[..., 0::2] + rows[..., 1::2]).mul_(0.25)
    want = guided_coefficients(lo[:, :3], lo[:, 3:], r, 1e-4)
    got = kernels.guided_coefficients(guide, prob, sub, r, 1e-4)
    assert got.shape == want.shape == (1, 4, 64 // sub, 96 // sub)
    q_want = apply_coefficients(want, guide).clamp(0, 1)
    q_got = apply_coefficients(got, guide).clamp(0, 1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(q_got, q_want, atol=1e-5, rtol=0)
    assert kernels.guided_coefficients(guide[:, :1], prob, sub, r, 1e-4) is None  # grey guides: torch's


def test_refine_t_with_and_without_kernels(torch_only):
    img, p = _scene(240, 320, seed=3)
    guide = img.permute(2, 0, 1)[None].float().div(255.0)
    low = torch.nn.functional.interpolate(torch.cat([guide, p[None, None]], 1), size=(128, 160), mode="bilinear",
                                          align_corners=False, antialias=True)
    fast = refine_t(guide, low[:, :3], low[:, 3:], frame_u8=img)
    with torch_only:
        slow = refine_t(guide, low[:, :3], low[:, 3:], frame_u8=img)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(48, 64), (61, 83), (13, 17), (7, 5)])
def test_apply_matting_is_rvms_full_resolution_end(size):
    from bgkit.models.rvm.net import apply_coefficients as rvm_apply

    img, _ = _scene(*size)
    coef = torch.randn(1, 8, 13, 17, generator=torch.Generator().manual_seed(sum(size))) * 0.4 + 0.2
    # (13x17: the frame's own size in one case, no resize)
    fgr, pha = rvm_apply(img.permute(2, 0, 1)[None].float().div(255.0), coef)
    got_fgr, got_pha = kernels.apply_matting(coef, img)
    assert got_fgr.shape == (*size, 3) and got_pha.shape == size
    # as in test_apply_guided_is_apply_coefficients
    torch.testing.assert_close(got_fgr, fgr[0].permute(1, 2, 0), atol=5e-6, rtol=0)
    torch.testing.assert_close(got_pha, pha[0, 0], atol=5e-6, rtol=0)
    assert kernels.apply_matting(coef[:, :4], img) is None  # not RVM's coefficients: torch's business


@pytest.mark.parametrize(("size", "ratio"), [((480, 640), 0.25), ((240, 427), 0.5), ((61, 83), 0.48), ((7, 5), 0.3)])
def test_resize_taps_is_rvms_downsample_bit_for_bit(size, ratio):
    from bgkit.models.rvm.net import downsample, downsample_taps

    img, _ = _scene(*size)
    r = float(np.float32(ratio))
    want = downsample(img.permute(2, 0, 1)[None].float().div(255.0), r)
    got = kernels.resize_taps(img, *downsample_taps(*size, r))
    assert got.shape == want.shape
    assert torch.equal(got, want)  # the first convolution amplifies one-ulp differences


@settings(max_examples=60, deadline=None)
@given(probs=arrays(np.float32, st.tuples(st.integers(1, 16), st.integers(1, 16)), elements=st.floats(0, 1, width=32)),
       threshold=st.floats(0, 1))
def test_threshold_is_the_comparison(probs, threshold):
    p = torch.from_numpy(probs)
    assert torch.equal(kernels.threshold(p, threshold), p > threshold)


@settings(max_examples=60, deadline=None)
@given(probs=arrays(np.float32, st.tuples(st.integers(2, 16), st.integers(2, 16)), elements=st.floats(0, 1, width=32)),
       threshold=st.floats(0.05, 0.95), softness=st.floats(0.1, 6), given_mask=st.booleans())
def test_soft_alpha_kernel_is_soft_alpha(probs, threshold, softness, given_mask):
    p = torch.from_numpy(probs)
    mask = (p > threshold) if not given_mask else torch.from_numpy(probs > 0.5)
    on, alpha = kernels.soft_alpha(p, threshold, softness, mask if given_mask else None)
    assert torch.equal(on, mask)
    torch.testing.assert_close(alpha, soft_alpha(p, threshold, softness, mask if given_mask else None),
                               atol=1e-5, rtol=0)
    assert torch.equal(alpha > 0.5, mask)


@pytest.mark.parametrize("flip", [False, True])
def test_blends_are_blend_t(flip):
    img, p = _scene()
    bg_img = img.flip(0).contiguous()
    fg_float = img.float().div(255.0).contiguous()
    for fg, scale in ((img, 1.0), (fg_float, 255.0)):
        for bg in (bg_img, bg_img.float() * 0.9, torch.tensor([10.0, 200.0, 30.0])):
            want = C._flip(C.blend_t(fg.float() * scale, p, bg), flip)
            _close_pictures(kernels.blend(fg, p, bg, flip, scale), want)


def test_blend_takes_a_colour_either_shape_and_leaves_other_shapes_to_torch():
    img, p = _scene()
    colour = torch.tensor([10.0, 200.0, 30.0])
    want = kernels.blend(img, p, colour)
    assert torch.equal(kernels.blend(img, p, colour.reshape(1, 1, 3)), want)
    assert kernels.blend(img, p, img[:, :40].contiguous()) is None  # not the frame's size: torch broadcasts or says why


def test_background_colour_is_the_masked_blurs_normalisation():
    img, p = _scene(60, 80)
    low, _ = filters._reduced_blur_low(img, 4.5, 3, weight=1.0 - p)
    num, den = low[:, :, :3], low[:, :, 3:]
    eps = filters.MASKED_BLUR_EPS
    fallback = num.sum(dim=(0, 1)) / den.sum().clamp(min=eps)
    want = (num + eps * fallback) / (den + eps)
    torch.testing.assert_close(kernels.background_colour(low, eps), want, atol=1e-3, rtol=1e-5)
    empty = torch.zeros_like(low)  # no background anywhere: the fallback is 0 / eps, never a NaN
    assert torch.isfinite(kernels.background_colour(empty, eps)).all()


@pytest.mark.parametrize("size", [(60, 80), (61, 83), (9, 7)])
@pytest.mark.parametrize("sigma", [3.0, 4.5, 9.0])
def test_the_fused_bokeh_background_is_the_upsampled_masked_blur(size, sigma):
    img, p = _scene(*size)
    low, f, start = filters.background_blur_low(img, 1.0 - p, sigma)
    want = C.blend_t(img, p, filters._upsample(low, f, start, *size))
    blurred, fallback, f2, start2 = filters.bokeh_background_low(img, p, sigma)
    assert (f2, start2) == (f, start)
    for flip in (False, True):
        _close_pictures(kernels.blend_upsampled_background(img, blurred, fallback, filters.MASKED_BLUR_EPS, f, start,
                                                           p, flip), C._flip(want, flip))


@pytest.mark.parametrize("size", [(60, 84), (61, 83), (5, 7)])
def test_weighted_reduce_is_reduce_of_the_weighted_picture(size):
    img, p = _scene(*size)
    buf = torch.cat([img.float() * p[..., None], p[..., None]], dim=-1)
    for f, pad in ((2, 3), (3, 1), (5, 2)):
        torch.testing.assert_close(kernels.weighted_reduce(img, p, f, pad), filters._reduce(buf, f, pad),
                                   atol=2e-3, rtol=1e-5)


@pytest.mark.parametrize("src,dst", [((480, 640), (256, 256)), ((480, 640), (144, 256)), ((61, 83), (30, 41)),
                                     ((100, 100), (256, 256)), ((7, 9), (3, 2)), ((2, 1), (1, 1)), ((1, 3), (4, 5))])
def test_resize_antialias_is_interpolate_of_the_float_frame(src, dst):
    import torch.nn.functional as F

    frame = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (*src, 3), dtype=np.uint8))
    want = F.interpolate(frame.permute(2, 0, 1)[None].float() / 255.0, size=dst, mode="bilinear",
                         align_corners=False, antialias=True)
    got, same = kernels.resize_antialias(frame, dst)
    assert got.shape == want.shape and same is got
    torch.testing.assert_close(got, want, atol=5e-6, rtol=0)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # normalised in the same pass, as torch does it
    low, normalised = kernels.resize_antialias(frame, dst, (mean, std))
    assert torch.equal(low, got)
    assert torch.equal(normalised, (got - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))


@pytest.mark.parametrize("size", [(60, 84), (61, 83), (5, 7)])
def test_mask_blur_low_is_the_blur_of_the_mask_before_upsampling(size):
    _, p = _scene(*size)
    on = p > 0.5
    for f, pad in ((2, 3), (3, 1)):
        torch.testing.assert_close(kernels.mask_block_means(on, f, pad), filters._reduce(on.float()[..., None], f, pad),
                                   atol=1e-6, rtol=0)
    for sigma in (4.0, 7.5):
        low, f, start = filters.mask_blur_low(on, sigma)
        torch.testing.assert_close(filters._upsample(low[..., None], f, start, *size),
                                   filters.blur_hwc(on.float()[..., None], sigma), atol=1e-5, rtol=0)
    assert filters.mask_blur_low(on, 2.0) is None  # a blur at full resolution: no reduced copy


def test_separable_blur_valid_is_sep_blur():
    x = torch.rand(40, 50, 4, generator=torch.Generator().manual_seed(0)) * 255
    k, r = filters._kernel(1.4)
    torch.testing.assert_close(kernels.separable_blur_valid(x, k), filters._sep_blur(x, k, r, pad=False),
                               atol=2e-3, rtol=1e-5)


@pytest.mark.parametrize("blur", [0, 3, 4.5])
@pytest.mark.parametrize("colours", [((0, 0, 0, 0), (0, 0, 0, 255)), ((255, 0, 0, 128), (0, 0, 255, 200)),
                                     ((10, 200, 30, 255), (0, 0, 0, 0))])
def test_effects_with_and_without_kernels(torch_only, blur, colours):
    img, p = _scene()
    alpha = soft_alpha(p, 0.5)
    mask = (p > 0.5).to(torch.uint8)
    bg = img.flip(1).contiguous()
    fg = img.float().div(255.0)
    cases = {
        "mask": lambda: C.draw_two_colour_mask_t(img, mask, *colours, 0.7, True, blur),
        "bokeh": lambda: C.bokeh_t(img, alpha, 3.0 + blur, 0.0, False),
        "bokeh edge": lambda: C.bokeh_t(img, alpha, 4.0, 1.5, True),
        "replace": lambda: C.replace_t(img, alpha, bg, 0.0, True),
        "replace colour": lambda: C.replace_t(img, alpha, colours[1], blur, False, foreground=fg),
        "cutout": lambda: C.cutout_t(img, alpha, 0.0, True, foreground=fg),
    }
    for name, make in cases.items():
        fast = make()
        with torch_only:
            reference = make()
        assert fast.shape == reference.shape, name
        assert (fast.int() - reference.int()).abs().max() <= 1, name


@pytest.mark.parametrize("effect", ["mask", "bokeh", "replace", "cutout"])
def test_the_pipeline_with_and_without_kernels(torch_only, selfie, effect):
    import bgkit
    from bgkit.io.sample import sample_image

    photo = sample_image()
    pipe = bgkit.Pipeline(selfie, effect=effect)
    fast = pipe.process(photo)
    with torch_only:
        reference = pipe.process(photo)
        reference_alpha = reference.segmentation.alpha  # made when first read: here, by torch
    assert np.array_equal(fast.segmentation.mask, reference.segmentation.mask) or \
        (fast.segmentation.mask != reference.segmentation.mask).mean() < 1e-4  # a probability on the threshold
    # the alpha ramp divides by the probability's slope: where it is nearly flat, rounding in the
    # probability (a few 1e-6) moves the alpha by more
    off = np.abs(fast.segmentation.alpha - reference_alpha)
    assert (off > 1e-4).mean() < 1e-4 and off.max() < 1e-2
    diff = np.abs(fast.picture.astype(int) - reference.picture.astype(int))
    assert (diff > 1).mean() < 1e-4
