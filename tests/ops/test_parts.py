"""Tests of the BodyPix part-drawing API (bodypix.parts)."""

from __future__ import annotations

import numpy as np
import pytest

from bgkit.ops.filters import gaussian_blur
from bgkit.ops.parts import (
    RAINBOW_PART_COLORS,
    blur_body_part,
    body_part_mask_alpha,
    draw_pixelated_mask,
    to_colored_part_mask,
)


def _random_parts(rng: np.random.Generator, h: int = 23, w: int = 31) -> np.ndarray:
    ids = rng.integers(-1, 24, (h // 4 + 1, w // 4 + 1))
    return np.kron(ids, np.ones((4, 4), int))[:h, :w].astype(np.int32)  # blocky, like real maps


def _js_to_mask_alpha(maps: list[np.ndarray], ids: list[int]) -> np.ndarray:
    """Oracle: BodyPix toMask(fg a=0, bg a=255, drawContour=true, ids) alpha, scanned pixel by pixel."""
    h, w = maps[0].shape
    alpha = np.zeros(h * w, np.uint8)

    def is_fg(m: np.ndarray, r: int, c: int) -> bool:
        return 0 <= r < h and 0 <= c < w and int(m[r, c]) in ids

    for i in range(h):
        for j in range(w):
            n = i * w + j
            alpha[n] = 255
            for m in maps:
                if int(m[i, j]) in ids:
                    alpha[n] = 0
                    boundary = any(not is_fg(m, i + a, j + b) for a in (-1, 1) for b in (-1, 1))
                    if boundary and 0 < i < h - 1 and 0 < j < w - 1:
                        for a in (-1, 1):
                            for b in (-1, 1):
                                alpha[(i + a) * w + (j + b)] = 255
    return alpha.reshape(h, w)


def test_colored_part_mask() -> None:
    rng = np.random.default_rng(0)
    parts = _random_parts(rng)
    out = to_colored_part_mask(parts)
    assert out is not None and out.shape == (*parts.shape, 4) and out.dtype == np.uint8
    on = parts >= 0
    np.testing.assert_array_equal(out[on, :3], RAINBOW_PART_COLORS[parts[on]])
    assert (out[~on] == 255).all() and (out[..., 3] == 255).all()
    other = np.full_like(parts, -1)
    other[:3, :3] = 5
    both = to_colored_part_mask([parts, other])
    np.testing.assert_array_equal(both[:3, :3, :3], np.broadcast_to(RAINBOW_PART_COLORS[5], (3, 3, 3)))
    assert to_colored_part_mask([]) is None
    with pytest.raises(ValueError, match="No color"):
        to_colored_part_mask(np.array([[24]]))
    with pytest.raises(ValueError, match="No color"):
        to_colored_part_mask(np.array([[3]]), palette=[[0, 0, 0]])


@pytest.mark.parametrize("seed", range(4))
def test_body_part_mask_alpha_matches_js_scan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    maps = [_random_parts(rng) for _ in range(1 + seed % 2)]
    ids = [0, 1] if seed < 2 else [3, 12, 13]
    for m in maps:
        m[rng.random(m.shape) < 0.3] = ids[0]
    np.testing.assert_array_equal(body_part_mask_alpha(maps, ids), _js_to_mask_alpha(maps, ids))


def test_blur_body_part() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    parts = _random_parts(rng)
    # no background blur: the image comes back unchanged
    np.testing.assert_array_equal(blur_body_part(img, parts, background_blur_amount=0), img)
    # sharp edges: kept pixels are the image, blurred pixels the blurred image
    out = blur_body_part(img, parts, [0, 1, 2, 3], background_blur_amount=4, edge_blur_amount=0)
    alpha = body_part_mask_alpha(parts, [0, 1, 2, 3])
    blurred = np.clip(np.rint(gaussian_blur(img.astype(np.float32), 4)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out[alpha == 255], img[alpha == 255])
    np.testing.assert_array_equal(out[alpha == 0], blurred[alpha == 0])
    flipped = blur_body_part(img, parts, flip_horizontal=True)
    np.testing.assert_array_equal(flipped, np.fliplr(blur_body_part(img, parts)))
    np.testing.assert_array_equal(blur_body_part(img, [], background_blur_amount=4), blurred)
    with pytest.raises(ValueError, match="31x23"):
        blur_body_part(img, parts[:-1])
    with pytest.raises(ValueError):
        blur_body_part(img, parts, background_blur_amount=21)
    with pytest.raises(ValueError):
        blur_body_part(img, parts, body_part_ids_to_blur=[24])


def test_draw_pixelated_mask() -> None:
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    parts = _random_parts(rng, 40, 60)
    colored = to_colored_part_mask(parts)
    np.testing.assert_array_equal(draw_pixelated_mask(img, colored, opacity=0.0), img)
    flat = np.zeros((40, 60, 4), np.uint8)
    flat[...] = (10, 20, 30, 255)
    out = draw_pixelated_mask(img, flat, opacity=1.0)
    # cells keep the mask colour; 1-px white lines centred on x = 10 i anti-alias 50 % onto
    # columns 10 i - 1 and 10 i (and rows likewise)
    inner = out[1:9, 1:9]
    assert (inner == (10, 20, 30)).all()
    np.testing.assert_array_equal(out[5, 9], np.rint(np.array([10, 20, 30]) * 0.5 + 127.5).astype(np.uint8))
    np.testing.assert_array_equal(out[5, 10], out[5, 9])
    np.testing.assert_array_equal(out[5, 0], out[5, 9])
    assert (out[5, 59] == (10, 20, 30)).all()
    # 10 x 10 blocks of constant colour (nearest-neighbour upscale of the 6 x 4 cell image)
    big = draw_pixelated_mask(img, colored, opacity=1.0, pixel_cell_width=10)
    assert big.shape == img.shape
    np.testing.assert_array_equal(
        draw_pixelated_mask(img, colored, 0.6, 2, 10, flip_horizontal=True),
        np.fliplr(draw_pixelated_mask(img, colored, 0.6, 2, 10)),
    )
    with pytest.raises(ValueError, match="60x40"):
        draw_pixelated_mask(img, colored[:-1])
