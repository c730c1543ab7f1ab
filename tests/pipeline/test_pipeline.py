"""bgkit.pipeline: the one data path -- stills, streams, soft alpha, and every entry point agreeing."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import scripted_segmenter
from PIL import Image

import bgkit
from bgkit import EffectSettings, Pipeline, process_frame
from bgkit.io.sample import sample_image
from bgkit.pipeline import render


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.fromarray(sample_image()).resize((200, 160)))


@pytest.fixture
def frame():
    return np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8)


def _blinking_maps():
    base = np.zeros((24, 32), np.float32)
    base[4:20, 8:24] = 0.95
    a, b = base.copy(), base.copy()
    a[2:4, 2:6] = 0.8  # a background blob that blinks just around the threshold
    b[2:4, 2:6] = 0.6
    return [a, b]


# -- stills -------------------------------------------------------------------------------------


def test_process_is_render_of_segment_and_matches_the_compositing_functions(selfie, photo):
    pipe = Pipeline(selfie, EffectSettings(opacity=0.4, mask_blur_amount=2, foreground=(255, 0, 0, 128),
                                           flip_horizontal=True))
    picture, seg = pipe.process(photo)
    np.testing.assert_array_equal(picture, pipe.render(photo, pipe.segment(photo)))
    np.testing.assert_array_equal(picture, render(photo, seg, pipe.settings))
    expected = bgkit.draw_mask(photo, bgkit.to_mask(seg, (255, 0, 0, 128), (0, 0, 0, 255)), 0.4, 2, True)
    np.testing.assert_array_equal(picture, expected)
    s = pipe.update(effect="bokeh", edge_blur_amount=1)
    np.testing.assert_array_equal(pipe.process(photo).picture, bgkit.draw_bokeh_effect(photo, seg, s.background_blur_amount, 1, True))
    pipe.update(effect="replace", background=(0, 255, 0, 255))
    np.testing.assert_array_equal(pipe.process(photo).picture, bgkit.replace_background(photo, seg, (0, 255, 0, 255), 1, True))
    pipe.update(effect="cutout", edge_blur_amount=0)
    cut = pipe.process(photo).picture
    np.testing.assert_array_equal(cut[..., 3], np.fliplr(np.floor(seg.alpha * 255 + 0.5).astype(np.uint8)))


def test_soft_alpha_is_what_bokeh_replace_and_cutout_blend_with(selfie, photo):
    seg = Pipeline(selfie).segment(photo)
    soft = (seg.alpha > 0) & (seg.alpha < 1)
    assert soft.any() and ((seg.alpha > 0.5) == (seg.mask == 1)).all()
    cut = Pipeline(selfie, effect="cutout").process(photo).picture[..., 3]
    assert ((cut > 0) & (cut < 255)).sum() >= soft.sum() * 0.9  # a real soft alpha channel
    hard = Pipeline(selfie, effect="cutout", edge_softness=0).process(photo).picture[..., 3]
    assert set(np.unique(hard)) <= {0, 255}


def test_the_mask_effect_makes_no_alpha_until_it_is_read(selfie, photo):
    """Skip work that does not change the picture: the mask effect draws the mask, so the soft
    alpha is made only when someone reads it -- and is then the one the blending effects use."""
    masked = Pipeline(selfie, effect="mask").process(photo).segmentation
    assert "alpha" not in masked.timings
    blended = Pipeline(selfie, effect="cutout").process(photo).segmentation
    assert "alpha" in blended.timings
    np.testing.assert_array_equal(masked.alpha, blended.alpha)
    assert "alpha" in masked.timings


def test_defaults_come_from_the_model(selfie, photo):
    pipe = Pipeline(selfie)
    assert pipe.settings.segmentation_threshold is None and pipe.threshold() == selfie.default_threshold == 0.5
    seg = pipe.segment(photo)
    assert seg.threshold == 0.5 and seg.model_input_size == (256, 256)
    assert Pipeline(selfie, segmentation_threshold=0.8).segment(photo).threshold == 0.8


def test_segmentations_are_never_flipped_only_pictures(selfie, photo):
    a = Pipeline(selfie, effect="replace", background=(0, 0, 255), flip_horizontal=True).process(photo)
    b = Pipeline(selfie, effect="replace", background=(0, 0, 255)).process(photo)
    np.testing.assert_array_equal(a.segmentation.mask, b.segmentation.mask)
    np.testing.assert_array_equal(a.picture, np.fliplr(b.picture))


def test_process_frame_is_a_thin_wrapper(selfie, photo):
    s = EffectSettings(effect="bokeh")
    out, seg = process_frame(photo, selfie, s)
    np.testing.assert_array_equal(out, Pipeline(selfie, s).process(photo).picture)


def test_bad_arguments(selfie, photo):
    with pytest.raises(TypeError, match="Segmenter"):
        Pipeline("selfie")
    with pytest.raises(TypeError, match="EffectSettings"):
        Pipeline(selfie, {"effect": "mask"})
    with pytest.raises(ValueError, match="effect must be one of"):
        Pipeline(selfie, effect="blur")
    pipe = Pipeline(selfie)
    with pytest.raises(ValueError, match="size mismatch"):
        pipe.render(photo[:10], pipe.segment(photo))


# -- streams ------------------------------------------------------------------------------------


def test_a_stream_is_smoothed_and_stills_are_not(frame):
    plain = EffectSettings(refine_edges=False)
    seq = scripted_segmenter(_blinking_maps())
    stream = Pipeline(seq, plain).stream()
    masks = [stream.segment(frame).mask for _ in range(6)]
    assert all(np.array_equal(masks[0], m) for m in masks)  # hysteresis holds the blob steady
    assert stream.frames == 6 and stream.smoother.frames == 6

    raw = [Pipeline(seq, plain).segment(frame).mask for _ in range(4)]
    assert not np.array_equal(raw[0], raw[1])  # still pictures are never smoothed: it blinks

    off = Pipeline(scripted_segmenter(_blinking_maps()), plain.updated(temporal_smoothing=False)).stream()
    blinks = [off.segment(frame).mask for _ in range(3)]
    assert not np.array_equal(blinks[0], blinks[1]) and off.smoother.frames == 0


def test_stream_output_is_render_of_its_segmentation(frame):
    pipe = Pipeline(scripted_segmenter(_blinking_maps()), EffectSettings(effect="bokeh"))
    stream = pipe.stream()
    for _ in range(3):
        out, seg = stream.process(frame)
        np.testing.assert_array_equal(out, render(frame, seg, pipe.settings))
        assert ((seg.alpha > 0.5) == (seg.mask == 1)).all()  # the alpha follows the hysteresis state


def test_setting_changes_keep_the_stream_and_a_new_model_or_size_restarts_it(frame):
    seq = scripted_segmenter(_blinking_maps())
    pipe = Pipeline(seq, EffectSettings(refine_edges=False, temporal_ema=0.5))
    stream = pipe.stream()
    stream.segment(frame)
    pipe.update(temporal_ema=0.9, hysteresis=0.3, temporal_motion_gate=0.0)
    stream.segment(frame)
    sm = stream.smoother
    assert sm.ema == 0.9 and sm.hysteresis == 0.3 and sm.motion_gate is None
    assert sm.frames == 2  # not reset by a slider
    pipe.settings = pipe.settings.updated(temporal_smoothing=False)
    stream.segment(frame)
    assert sm.frames == 0
    pipe.settings = pipe.settings.updated(temporal_smoothing=True)
    stream.segment(frame)
    stream.segment(frame)
    assert sm.frames == 2
    pipe.segmenter = scripted_segmenter(_blinking_maps(), name="other")
    stream.segment(frame)
    assert sm.frames == 1 and stream.frames == 1  # another model: a new stream
    small = scripted_segmenter([m[:12, :16] for m in _blinking_maps()], name="other")
    pipe.segmenter = small
    stream.segment(frame[:12, :16])
    assert stream.frames == 1
    stream.reset()
    assert stream.frames == 0
    with pytest.raises(ValueError):
        pipe.update(temporal_ema=0)


def test_a_stream_is_thread_safe(frame):
    seq = scripted_segmenter(_blinking_maps())
    stream = Pipeline(seq, EffectSettings()).stream()
    errors = []

    def work():
        try:
            for _ in range(10):
                stream.process(frame)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and stream.frames == 30 and seq.calls == 30


def test_refinement_is_on_by_default(frame):
    maps = _blinking_maps()
    refined = Pipeline(scripted_segmenter(maps)).segment(frame)
    raw = Pipeline(scripted_segmenter(maps), refine_edges=False).segment(frame)
    assert not np.array_equal(refined.probabilities, raw.probabilities)
    np.testing.assert_array_equal(raw.probabilities, maps[0])
    assert "refine" in refined.timings and "refine" not in raw.timings


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_everything_stays_there_and_agrees_with_the_cpu(photo):  # pragma: no cover - GPU machines
    cpu = bgkit.load_segmenter("selfie", device="cpu", backend="torch")
    gpu = bgkit.load_segmenter("selfie", device="cuda", backend="torch")
    for effect in ("mask", "bokeh", "replace", "cutout"):
        a = Pipeline(cpu, effect=effect).process(photo)
        b = Pipeline(gpu, effect=effect).process(photo)
        assert b.segmentation.tensor("alpha").device.type == "cuda"
        assert np.abs(a.picture.astype(int) - b.picture.astype(int)).max() <= 2, effect
