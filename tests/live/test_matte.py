"""The live loop's matte path: the kernel sends the person's matte, the page composites.

(The page's own compositing, widget.js, is held to :func:`compose_matte` by
tests/browser/test_page_compositing.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import bgkit
from bgkit.core.segmentation import Segmentation, soft_alpha
from bgkit.io.sample import sample_image
from bgkit.live import matte
from bgkit.live.processor import LiveProcessor
from bgkit.live.protocol import ProtocolError, SimulatedClient, encode_frame, parse_frame_header


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.array(Image.fromarray(sample_image()).resize((640, 480), Image.BILINEAR))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(2, 12), st.integers(2, 12)), elements=st.floats(0, 1, width=32)),
       st.floats(0.05, 0.95))
def test_matte_bytes_keep_the_mask(p: np.ndarray, threshold: float) -> None:
    """byte >= 128 exactly where the mask is on, and the bytes are the alpha to half a grey level."""
    t = torch.from_numpy(p)
    mask = t > threshold
    alpha = soft_alpha(t, threshold, 1.0)
    m = matte.encode_matte(Segmentation(t, mask, alpha, threshold=threshold))
    assert m.dtype == np.uint8 and m.shape == p.shape
    np.testing.assert_array_equal(m >= 128, mask.numpy())
    err = np.abs(m.astype(np.float64) - 255.0 * alpha.numpy())
    assert err.max() <= 1.0 + 1e-3  # the mask rule moves a byte by at most one grey level ...
    free = (m != 127) & (m != 128)
    assert (err[free] <= 0.5 + 1e-3).all()  # ... and only next to the threshold


def test_upsample_is_torch_bilinear_and_identity_at_size() -> None:
    m = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_array_equal(matte.upsample_matte(m, 3, 4).numpy(), m.astype(np.float32))
    up = matte.upsample_matte(m, 6, 8).numpy()
    assert up.shape == (6, 8) and up[0, 0] == m[0, 0] and up[-1, -1] == m[-1, -1]  # edges clamped


def test_compose_at_full_size_is_the_pipeline_picture(selfie, frame) -> None:
    """With the matte at the frame's size, the page's picture is the kernel's (to the matte's rounding)."""
    for effect in matte.MATTE_EFFECTS:
        pipe = bgkit.Pipeline(selfie, effect=effect, background_blur_amount=4)
        seg = pipe.segment(frame)
        want = pipe.render(frame, seg)
        got = matte.compose_matte(frame, matte.encode_matte(seg), pipe.settings)
        assert got.shape == want.shape
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() <= 2, (effect, diff.max())


def test_look_round_trips_and_names_the_background() -> None:
    s = bgkit.EffectSettings(effect="replace", opacity=0.4, foreground="#ff000080", background=(1, 2, 3, 4),
                             mask_blur_amount=2, background_blur_amount=5, edge_blur_amount=1, flip_horizontal=True)
    look = matte.look(s, "abc")
    assert look["background_image"] == "abc" and look["foreground"] == [255, 0, 0, 128]
    back = matte.look_settings(look)
    for name in ("effect", "opacity", "mask_blur_amount", "background_blur_amount", "edge_blur_amount", "flip_horizontal"):
        assert getattr(back, name) == getattr(s, name)
    assert matte.look(s.updated(effect="bokeh"), "abc")["background_image"] is None


def test_the_kernel_asks_for_frames_at_the_models_size(selfie, frame) -> None:
    proc = LiveProcessor(selfie, bgkit.EffectSettings(effect="bokeh"))
    assert proc.want((640, 480), True) == {"kind": "matte", "width": 256, "height": 256}
    proc.update(internal_resolution="medium")
    assert proc.want((640, 480), True) == {"kind": "matte", "width": 320, "height": 240}
    proc.update(internal_resolution="full")
    assert proc.want((640, 480), True) == {"kind": "matte", "width": 640, "height": 480}  # never more than the camera
    assert proc.want((640, 480), False)["kind"] == "picture"  # a page that cannot composite
    proc.compositing = "kernel"
    assert proc.want((640, 480), True) == {"kind": "picture", "width": 640, "height": 480}


def test_a_frame_at_the_models_size_is_taken_as_it_is(selfie, frame) -> None:
    """A frame the page scaled down is segmented at its own size: internal_resolution applies to
    the picture's size, which the header gives, not again to the smaller frame."""
    proc = LiveProcessor(selfie, bgkit.EffectSettings(effect="mask", internal_resolution="medium"))
    small = np.array(Image.fromarray(frame).resize((320, 240)))
    content, buffers = encode_frame(small, "rgba", 1, display=(640, 480), accept=("matte", "picture"))
    reply, out = proc.handle_message(content, buffers)
    assert reply["kind"] == "matte" and (reply["width"], reply["height"]) == (320, 240)
    assert proc.stream.pipeline.segmenter is selfie
    # model input = the frame (full), not a quarter of it
    assert proc.stats["frame_size"] == (320, 240)
    assert len(out) == 1 and len(out[0]) == 320 * 240


def test_the_replacement_picture_is_sent_once(selfie, frame) -> None:
    backdrop = np.array(Image.fromarray(sample_image()).rotate(90))
    proc = LiveProcessor(selfie, bgkit.EffectSettings(effect="replace", background_image=backdrop))
    client = SimulatedClient(proc.handle_message, fmt="rgba", mode="matte")
    first, _ = client.roundtrip(frame)
    second, picture = client.roundtrip(frame)
    third, _ = client.roundtrip(frame)
    assert first["background_image"]["width"] == 640 and first["look"]["background_image"] == first["background_image"]["id"]
    assert "background_image" not in second and "background_image" not in third
    assert second["look"]["background_image"] == first["background_image"]["id"]
    kernel = bgkit.Pipeline(selfie, effect="replace", background_image=backdrop).process(frame).picture
    assert np.abs(picture.astype(int) - kernel).mean() < 2.0


def test_effects_the_page_cannot_draw_come_as_pictures(selfie, bodypix, frame) -> None:
    proc = LiveProcessor(bodypix, bgkit.EffectSettings(effect="blur_face"))
    client = SimulatedClient(proc.handle_message, fmt="jpeg", mode="matte")
    reply, picture = client.roundtrip(frame)
    assert reply["kind"] == "picture" and reply["want"]["kind"] == "picture" and picture.shape == (480, 640, 3)
    proc.update(effect="bokeh")
    client.roundtrip(frame)
    reply, _ = client.roundtrip(frame)
    assert reply["kind"] == "matte"


def test_bad_display_and_accept_fields_are_protocol_errors() -> None:
    base = {"type": "frame", "seq": 1, "width": 4, "height": 4, "format": "rgba"}
    for bad in ({"display": [0, 4]}, {"display": "640x480"}, {"display": [1.5, 2]}, {"accept": "matte"}):
        with pytest.raises(ProtocolError):
            parse_frame_header({**base, **bad})
    h = parse_frame_header({**base, "display": [640, 480], "accept": ["matte", "picture"]})
    assert h.display == (640, 480) and h.accept == ("matte", "picture")
    assert parse_frame_header(base).accept == ("picture",)  # an older page: pictures only
