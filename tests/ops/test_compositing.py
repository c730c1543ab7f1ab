"""Tests for bgkit.ops.compositing: BodyPix toMask / drawMask / drawBokehEffect parity and friends."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from bgkit.ops.compositing import (
    composite,
    draw_bokeh_effect,
    draw_mask,
    remove_background,
    replace_background,
    to_mask,
)
from bgkit.ops.filters import gaussian_blur
from bgkit.core.segmentation import Segmentation

PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def scene(h=24, w=32, seed=0):
    """A random RGB image and a rectangular binary person mask (uint8 0/1)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = 1
    return img, mask


def red_on_blue(h=60, w=80):
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = BLUE
    person = np.zeros((h, w), np.uint8)
    person[10:h - 10, 30:50] = 1
    img[person == 1] = RED
    return img, person


# strategies for property tests: small random images with a matching mask
@st.composite
def image_and_mask(draw, soft=False):
    h = draw(st.integers(1, 14))
    w = draw(st.integers(1, 14))
    img = draw(arrays(np.uint8, (h, w, 3)))
    if soft:
        mask = draw(arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32)))
    else:
        mask = draw(arrays(np.uint8, (h, w), elements=st.integers(0, 1)))
    return img, mask


amounts = st.sampled_from([0, 0.5, 2, 3, 5, 20])


# --- to_mask --------------------------------------------------------------------------------


def test_to_mask_defaults_are_bodypix():
    _, mask = scene()
    out = to_mask(mask)
    assert out.shape == mask.shape + (4,) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[mask == 1], np.tile([0, 0, 0, 0], (int(mask.sum()), 1)))
    np.testing.assert_array_equal(out[mask == 0], np.tile([0, 0, 0, 255], (int((mask == 0).sum()), 1)))


def test_to_mask_colours_and_inputs():
    _, mask = scene()
    seg = Segmentation.from_probabilities(mask.astype(np.float32) * 0.9, threshold=0.5)
    for segmentation in (mask, mask.astype(bool), seg, mask.astype(np.int64)):
        out = to_mask(segmentation, foreground=(10, 20, 30, 40), background="#01020304")
        assert (out[mask == 1] == [10, 20, 30, 40]).all()
        assert (out[mask == 0] == [1, 2, 3, 4]).all()
    out = to_mask(mask, foreground=RED, background=BLUE)  # RGB = opaque
    assert (out[mask == 1] == [255, 0, 0, 255]).all() and (out[mask == 0] == [0, 0, 255, 255]).all()


def test_to_mask_soft_mixes_colours():
    p = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    out = to_mask(p, foreground=(200, 0, 100, 255), background=(0, 100, 0, 55))
    np.testing.assert_array_equal(out[0, 0], [0, 100, 0, 55])
    np.testing.assert_array_equal(out[0, 1], [50, 75, 25, 105])
    np.testing.assert_array_equal(out[0, 3], [200, 0, 100, 255])


# --- draw_mask ------------------------------------------------------------------------------


@pytest.mark.parametrize("blur", [0, 2, 7])
def test_draw_mask_opacity_zero_is_the_image(blur):
    img, mask = scene()
    out = draw_mask(img, to_mask(mask, RED, BLUE), opacity=0, mask_blur_amount=blur)
    np.testing.assert_array_equal(out, img)


def test_draw_mask_opacity_one_opaque_is_the_mask_colour():
    img, mask = scene()
    out = draw_mask(img, to_mask(mask, (12, 34, 56, 255), (200, 100, 0, 255)), opacity=1)
    assert (out[mask == 1] == [12, 34, 56]).all() and (out[mask == 0] == [200, 100, 0]).all()
    # a uniform opaque mask stays exact when blurred too
    out = draw_mask(img, to_mask(mask, (7, 8, 9), (7, 8, 9)), opacity=1.0, mask_blur_amount=9)
    assert (out == [7, 8, 9]).all()


def test_draw_mask_transparent_parts_leave_the_image():
    img, mask = scene()
    out = draw_mask(img, to_mask(mask), opacity=0.9)  # BodyPix default: person transparent
    np.testing.assert_array_equal(out[mask == 1], img[mask == 1])
    assert np.abs(out[mask == 0] - img[mask == 0] * 0.1).max() <= 0.5 + 1e-4  # black at 90%


@pytest.mark.parametrize("opacity, blur", [(0.7, 0), (0.35, 0), (0.7, 2), (0.5, 6)])
def test_draw_mask_matches_canvas_formula(opacity, blur):
    img, mask = scene(seed=3)
    m = to_mask(mask, (250, 10, 10, 200), (0, 0, 0, 100))
    a = m[..., 3:].astype(np.float64) / 255
    rgb = m[..., :3].astype(np.float64)
    if blur:
        premult, cover = gaussian_blur(rgb * a, blur), gaussian_blur(a, blur)
    else:
        premult, cover = rgb * a, a
    expected = premult * opacity + img * (1 - cover * opacity)
    out = draw_mask(img, m, opacity=opacity, mask_blur_amount=blur)
    assert np.abs(out - expected).max() <= 1.0


def test_draw_mask_rgb_mask_is_opaque_and_pil_masks_work():
    img, mask = scene()
    rgba = to_mask(mask, RED, BLUE)
    out = draw_mask(img, rgba[..., :3], opacity=0.6)
    np.testing.assert_array_equal(out, draw_mask(img, rgba, opacity=0.6))
    np.testing.assert_array_equal(draw_mask(img, Image.fromarray(rgba), opacity=0.6), out)


@pytest.mark.parametrize("blur", [0, 3, 11])
def test_draw_mask_flip_mirrors(blur):
    img, mask = scene(h=21, w=37, seed=4)
    m = to_mask(mask, RED, (0, 0, 0, 128))
    out = draw_mask(img, m, 0.7, blur, flip_horizontal=True)
    np.testing.assert_array_equal(out, np.fliplr(draw_mask(img, m, 0.7, blur)))
    assert out.flags.c_contiguous


@PROPS
@given(data=image_and_mask(), blur=amounts, ops=st.lists(st.floats(0, 1), min_size=2, max_size=2))
def test_draw_mask_moves_monotonically_towards_the_colour(data, blur, ops):
    img, mask = data
    m = to_mask(mask, (255, 0, 255), (0, 255, 0))  # opaque colours
    lo, hi = sorted(ops)
    out = draw_mask(img, m, lo, blur)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    a = out.astype(int)
    b = draw_mask(img, m, hi, blur).astype(int)
    full = draw_mask(img, m, 1.0, blur).astype(int)  # the (blurred) mask colour itself
    assert (np.abs(b - full) <= np.abs(a - full) + 1).all()


# --- bokeh ---------------------------------------------------------------------------------


def test_bokeh_without_blur_is_the_image():
    img, mask = scene()
    np.testing.assert_array_equal(draw_bokeh_effect(img, mask, 0, 0), img)


def test_bokeh_person_is_sharp_and_background_blurred():
    img, mask = scene(h=40, w=50, seed=5)
    out = draw_bokeh_effect(img, mask, background_blur_amount=6, edge_blur_amount=0)
    np.testing.assert_array_equal(out[mask == 1], img[mask == 1])
    assert out[mask == 0].std() < img[mask == 0].std() / 2


def test_bokeh_has_no_halo():
    # Red person on blue: with a big background blur the background next to the person
    # stays blue (normalised convolution keeps the person's red out of it).
    img, person = red_on_blue()
    out = draw_bokeh_effect(img, person, background_blur_amount=20, edge_blur_amount=0)
    ring = (gaussian_blur(person * 255, 1.5) > 0) & (person == 0)  # background pixels next to the edge
    assert ring.sum() > 50
    assert out[ring][:, 0].max() <= 2 and out[ring][:, 2].min() >= 253
    # soft edges only mix right at the boundary, never spreading red far out
    soft = draw_bokeh_effect(img, person, background_blur_amount=20, edge_blur_amount=3)
    far = (gaussian_blur(person * 255, 4) == 0)
    assert soft[far][:, 0].max() <= 2
    # a plain Gaussian of the whole frame (BodyPix's canvas blur) would have bled red
    assert gaussian_blur(img, 20)[ring][:, 0].max() > 30


def test_bokeh_equal_and_different_blur_amounts_agree():
    # bb == eb takes a shortcut (alpha = 1 - blur(1 - person)); it must match the general path
    img, mask = scene(h=40, w=48, seed=6)
    a = draw_bokeh_effect(img, mask, 4, 4).astype(int)
    b = draw_bokeh_effect(img, mask, 4, 4.000001).astype(int)
    assert np.abs(a - b).max() <= 1


@PROPS
@given(data=image_and_mask(), bb=amounts, eb=amounts, soft=st.booleans())
def test_bokeh_properties(data, bb, eb, soft):
    img, mask = data
    seg = mask.astype(np.float32) * 0.8 if soft else mask
    out = draw_bokeh_effect(img, seg, bb, eb)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(draw_bokeh_effect(img, seg, bb, eb, flip_horizontal=True), np.fliplr(out))
    if not soft and eb == 0:
        np.testing.assert_array_equal(out[mask == 1], img[mask == 1])
    # every output value lies within the range of the image's values (convex mixes only)
    assert out.min() >= img.min() and out.max() <= img.max()


# --- replace_background -------------------------------------------------------------------


@pytest.mark.parametrize("colour", [GREEN, (0, 255, 0, 255), "#00ff00", {"r": 0, "g": 255, "b": 0}])
def test_replace_with_colour_is_exact(colour):
    img, mask = scene()
    out = replace_background(img, mask, colour, edge_blur_amount=0)
    assert (out[mask == 0] == GREEN).all()
    np.testing.assert_array_equal(out[mask == 1], img[mask == 1])


def test_replace_with_translucent_colour_tints():
    img, mask = scene()
    out = replace_background(img, mask, (0, 0, 0, 51), edge_blur_amount=0)  # 20% black
    np.testing.assert_array_equal(out[mask == 1], img[mask == 1])
    expected = np.floor(img[mask == 0] * (1 - 51 / 255) + 0.5)
    assert np.abs(out[mask == 0] - expected).max() <= 1


def test_replace_with_image_same_size_is_exact():
    img, mask = scene()
    bg = np.random.default_rng(9).integers(0, 256, img.shape, dtype=np.uint8)
    out = replace_background(img, mask, bg, edge_blur_amount=0)
    np.testing.assert_array_equal(out[mask == 0], bg[mask == 0])
    np.testing.assert_array_equal(out[mask == 1], img[mask == 1])


def test_replace_with_image_covers_and_centre_crops():
    img = np.zeros((20, 20, 3), np.uint8)
    nobody = np.zeros((20, 20), np.uint8)
    wide = np.zeros((10, 40, 3), np.uint8)  # 4:1 -> scaled x2 to 80x20, centre 20 columns kept
    wide[:, :15] = RED
    wide[:, 15:25] = GREEN
    wide[:, 25:] = BLUE
    out = replace_background(img, nobody, wide, edge_blur_amount=0)
    assert out.shape == (20, 20, 3)
    assert (out[:, 2:18] == GREEN).all()  # the middle, away from bilinear transitions
    tall = np.zeros((60, 10, 3), np.uint8)  # 1:6 -> scaled x2 to 20x120, centre 20 rows kept
    tall[:50] = RED
    tall[50:] = BLUE
    out = replace_background(img, nobody, Image.fromarray(tall), edge_blur_amount=0)
    assert (out == RED).all()


def test_replace_soft_edge_stays_between_person_and_background():
    img, mask = scene(h=30, w=40, seed=10)
    out = replace_background(img, mask, (0, 0, 0), edge_blur_amount=3).astype(int)
    assert (out <= img).all()  # mixing towards black only ever darkens


def test_replace_flip_mirrors_everything():
    img, mask = scene(h=19, w=23, seed=11)
    bg = np.random.default_rng(12).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    for background in (bg, RED):
        out = replace_background(img, mask, background, 2, flip_horizontal=True)
        np.testing.assert_array_equal(out, np.fliplr(replace_background(img, mask, background, 2)))


# --- remove_background ------------------------------------------------------------------


def test_remove_background_alpha_is_exact():
    img, mask = scene()
    out = remove_background(img, mask)
    assert out.shape == img.shape[:2] + (4,) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., :3], img)
    np.testing.assert_array_equal(out[..., 3], mask * 255)
    soft = remove_background(img, np.array(mask * 0.5, np.float32))
    assert set(np.unique(soft[..., 3])) == {0, 128}


@PROPS
@given(data=image_and_mask(soft=True), eb=amounts, flip=st.booleans())
def test_remove_background_properties(data, eb, flip):
    img, p = data
    out = remove_background(img, p, eb, flip_horizontal=flip)
    assert out.shape == img.shape[:2] + (4,) and out.dtype == np.uint8
    rgb = np.fliplr(img) if flip else img
    np.testing.assert_array_equal(out[..., :3], rgb)
    if eb == 0:
        expected = np.floor(p.astype(np.float64) * 255 + 0.5)
        assert np.abs(out[..., 3] - (np.fliplr(expected) if flip else expected)).max() <= 1
    else:
        assert out[..., 3].min() >= np.floor(p.min() * 255) - 1
        assert out[..., 3].max() <= np.ceil(p.max() * 255) + 1


# --- composite ---------------------------------------------------------------------------


def test_composite_endpoints_and_formula():
    img, mask = scene()
    bg = np.random.default_rng(13).integers(0, 256, img.shape, dtype=np.uint8)
    np.testing.assert_array_equal(composite(img, np.ones(mask.shape, np.float32), bg), img)
    np.testing.assert_array_equal(composite(img, np.zeros(mask.shape, np.float32), bg), bg)
    alpha = np.random.default_rng(14).random(mask.shape).astype(np.float32)
    expected = img * alpha[..., None].astype(np.float64) + bg * (1 - alpha[..., None].astype(np.float64))
    assert np.abs(composite(img, alpha, bg) - expected).max() <= 0.5 + 1e-3
    out = composite(img, mask.astype(bool), "#102030")
    assert (out[mask == 0] == [16, 32, 48]).all() and (out[mask == 1] == img[mask == 1]).all()
    rgba = np.dstack([img, np.full(mask.shape, 255, np.uint8)])
    assert composite(rgba, alpha[..., None], (0, 0, 0, 0)).shape == rgba.shape


@PROPS
@given(data=image_and_mask(soft=True), bg=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))
def test_composite_stays_between_its_inputs(data, bg):
    img, alpha = data
    out = composite(img, alpha, bg).astype(int)
    lo = np.minimum(img, np.array(bg)).astype(int)
    hi = np.maximum(img, np.array(bg)).astype(int)
    assert ((out >= lo) & (out <= hi)).all()


# --- input forms and bad input -----------------------------------------------------------


def test_segmentation_forms_agree():
    img, mask = scene()
    seg = Segmentation.from_probabilities(mask.astype(np.float32), threshold=0.5)
    expected = draw_bokeh_effect(img, mask, 3, 3)
    for s in (seg, mask.astype(bool), mask.astype(np.float32)):
        np.testing.assert_array_equal(draw_bokeh_effect(img, s, 3, 3), expected)
    import torch

    chw = torch.from_numpy(img).permute(2, 0, 1)
    np.testing.assert_array_equal(draw_bokeh_effect(chw, torch.from_numpy(mask), 3, 3), expected)
    np.testing.assert_array_equal(draw_bokeh_effect(Image.fromarray(img), mask, 3, 3), expected)


def test_size_mismatch_names_both_sizes():
    img, _ = scene(h=24, w=32)
    small = np.zeros((10, 20), np.uint8)
    message = r"image is 32x24 but segmentation is 20x10"
    for fn in (
        lambda: draw_bokeh_effect(img, small),
        lambda: replace_background(img, small, RED),
        lambda: remove_background(img, small),
    ):
        with pytest.raises(ValueError, match=message):
            fn()
    with pytest.raises(ValueError, match=r"image is 32x24 but mask_image is 20x10"):
        draw_mask(img, to_mask(small))
    with pytest.raises(ValueError, match=r"image is 32x24 but alpha is 20x10"):
        composite(img, small.astype(np.float32), RED)


def test_bad_colour_arguments():
    img, mask = scene()
    with pytest.raises(ValueError, match="foreground"):
        to_mask(mask, foreground=(1, 2))
    with pytest.raises(ValueError, match="background.*integers 0..255"):
        to_mask(mask, background=(0, 0, 300))
    with pytest.raises(ValueError, match="background"):
        replace_background(img, mask, "#zzzzzz")
    with pytest.raises(ValueError, match="background"):
        replace_background(img, mask, (1, 2))


@pytest.mark.parametrize("opacity", [-0.1, 1.01, float("nan")])
def test_opacity_out_of_range(opacity):
    img, mask = scene()
    with pytest.raises(ValueError, match=r"opacity must be in \[0, 1\]"):
        draw_mask(img, to_mask(mask), opacity=opacity)


def test_blur_amounts_out_of_range():
    img, mask = scene()
    with pytest.raises(ValueError, match=r"mask_blur_amount must be in \[0, 20\] px"):
        draw_mask(img, to_mask(mask), mask_blur_amount=21)
    with pytest.raises(ValueError, match=r"background_blur_amount must be in \[0, 20\] px"):
        draw_bokeh_effect(img, mask, background_blur_amount=-1)
    with pytest.raises(ValueError, match=r"edge_blur_amount must be in \[0, 20\] px"):
        draw_bokeh_effect(img, mask, edge_blur_amount=20.5)
    with pytest.raises(ValueError, match="edge_blur_amount"):
        replace_background(img, mask, RED, edge_blur_amount=float("inf"))
    with pytest.raises(TypeError, match="opacity must be a number"):
        draw_mask(img, to_mask(mask), opacity="0.5")


def test_wrong_image_dtype_is_a_type_error():
    img, mask = scene()
    float_img = img.astype(np.float32) / 255
    with pytest.raises(TypeError, match="numpy images must be uint8"):
        draw_bokeh_effect(float_img, mask)
    with pytest.raises(TypeError, match="numpy images must be uint8"):
        draw_mask(float_img, to_mask(mask))
    with pytest.raises(TypeError, match="numpy images must be uint8"):
        replace_background(img, mask, float_img)
    with pytest.raises(TypeError, match="mask_image must be uint8"):
        draw_mask(img, to_mask(mask).astype(np.float32))


def test_bad_segmentations():
    img, mask = scene()
    with pytest.raises(ValueError, match="0 and 1.*0/255"):
        draw_bokeh_effect(img, mask * 255)
    with pytest.raises(ValueError, match="values in 0..1"):
        remove_background(img, mask * 1.5)
    with pytest.raises(ValueError, match="values in 0..1"):
        remove_background(img, np.full(mask.shape, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        to_mask(np.zeros((4, 5, 1), np.uint8))
    with pytest.raises(TypeError, match="Segmentation or an \\(H, W\\) mask array"):
        to_mask([[0, 1]])
    with pytest.raises(ValueError, match=r"mask_image must have shape \(H, W, 4\)"):
        draw_mask(img, mask)


def test_a_segmentation_composites_with_its_soft_alpha_and_masks_with_its_mask():
    img, mask = scene()
    # a soft edge: the probability ramps across the rectangle's left and right sides
    p = np.clip(np.arange(32, dtype=np.float32)[None, :] / 31.0, 0, 1).repeat(24, axis=0)
    seg = Segmentation.from_probabilities(p, threshold=0.5)
    assert 0 < ((seg.alpha > 0) & (seg.alpha < 1)).sum()  # a ramp, not a step
    np.testing.assert_array_equal(remove_background(img, seg)[..., 3], np.floor(seg.alpha * 255 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(replace_background(img, seg, RED, 0), replace_background(img, seg.alpha, RED, 0))
    np.testing.assert_array_equal(draw_bokeh_effect(img, seg, 4, 0), draw_bokeh_effect(img, seg.alpha, 4, 0))
    np.testing.assert_array_equal(to_mask(seg), to_mask(seg.mask))  # BodyPix's toMask: the binary mask


@pytest.mark.parametrize("blur", [0, 2, 4, 9])
@pytest.mark.parametrize("colours", [((0, 0, 0, 0), (0, 0, 0, 255)), ((255, 0, 0, 128), (0, 0, 255, 200)),
                                     ((10, 200, 30, 255), (0, 0, 0, 0)), ((9, 9, 9, 77), (200, 100, 50, 255))])
def test_two_colour_mask_is_the_general_mask_drawing(blur, colours):
    # the pipeline's shortcut for a two-colour mask draws the pixels draw_mask_t draws
    import torch

    from bgkit.ops.compositing import draw_mask_t, draw_two_colour_mask_t, to_mask_t

    img, mask = scene(48, 64, seed=3)
    image, person = torch.from_numpy(img), torch.from_numpy(mask)
    for opacity, flip in ((0.7, False), (1.0, True)):
        ref = draw_mask_t(image, to_mask_t(person.float(), *colours), opacity, blur, flip).int()
        got = draw_two_colour_mask_t(image, person, *colours, opacity, flip, blur).int()
        assert (got - ref).abs().max() <= (0 if blur == 0 else 1)
