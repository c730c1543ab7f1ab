"""bgkit.pipeline: one data path, the same result as calling the compositing functions by hand."""

from __future__ import annotations

import numpy as np
import pytest

import bgkit
from bgkit import EffectSettings, process_frame, render


@pytest.fixture(scope="module")
def selfie():
    return bgkit.load_segmenter("selfie", device="cpu")


@pytest.fixture(scope="module")
def photo(data_dir):
    return bgkit.load_image(data_dir / "images" / "vik_003.jpg")


def test_render_matches_the_compositing_functions(selfie, photo):
    seg = selfie.segment_person(photo)
    s = EffectSettings(opacity=0.4, mask_blur_amount=2, foreground=(255, 0, 0, 128), flip_horizontal=True)
    expected = bgkit.draw_mask(photo, bgkit.to_mask(seg, (255, 0, 0, 128), (0, 0, 0, 255)), 0.4, 2, True)
    np.testing.assert_array_equal(render(photo, seg, s), expected)
    np.testing.assert_array_equal(
        render(photo, seg, s.updated(effect="bokeh")), bgkit.draw_bokeh_effect(photo, seg, 3, 3, True)
    )
    np.testing.assert_array_equal(
        render(photo, seg, s.updated(effect="replace", background=(0, 255, 0, 255))),
        bgkit.replace_background(photo, seg, (0, 255, 0, 255), 3, True),
    )
    cut = render(photo, seg, s.updated(effect="cutout", edge_blur_amount=0))
    assert cut.shape == (*photo.shape[:2], 4)
    np.testing.assert_array_equal(cut[..., 3], np.fliplr(seg.mask) * 255)


def test_process_frame_segments_unflipped_and_mirrors_the_output(selfie, photo):
    settings = EffectSettings(effect="replace", background=(0, 0, 255, 255), edge_blur_amount=0, flip_horizontal=True)
    out, seg = process_frame(photo, selfie, settings)
    np.testing.assert_array_equal(seg.mask, bgkit.segment_frame(photo, selfie, settings).mask)
    _, raw = process_frame(photo, selfie, settings.updated(refine_edges=False))
    np.testing.assert_array_equal(raw.mask, selfie.segment_person(photo).mask)
    blue = (out == (0, 0, 255)).all(axis=2)
    np.testing.assert_array_equal(blue, np.fliplr(seg.mask == 0))


def test_settings_are_validated():
    with pytest.raises(ValueError, match="effect must be one of"):
        EffectSettings(effect="blur")
    with pytest.raises(ValueError, match="effect must be one of"):
        EffectSettings().updated(effect="sepia")
