"""The page's compositing (``composeMatte`` in widget.js) against the pipeline's (compose_matte).

The live loop's fast path sends the page a matte and lets it draw the effect; there must still be
one definition of each effect. Here widget.js runs in headless Chromium on a real frame and a
real matte from the selfie model, and its pictures are compared with
:func:`bgkit.live.matte.compose_matte` (the pipeline's own drawing) for every effect the page
draws, with the settings that change the drawing.

Tolerances: effects without a blur must agree to one grey level (rounding) except for the pixels
whose mask decision sits exactly on the threshold; blurs are the canvas's own (Skia), which
approximates a Gaussian differently from bgkit's (measured: mean 0.2-2.0 grey levels, 99th
percentile 1-7, on this frame), so those are held to a mean of 2.5 and a 99th percentile of 12.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bgkit
from bgkit.io.sample import sample_image
from bgkit.live.matte import compose_matte, encode_matte, look, look_settings
from bgkit.live.processor import LiveProcessor
from bgkit.live.protocol import SimulatedClient
from bgkit.ops.compositing import cover

WIDGET_JS = Path(bgkit.__file__).resolve().parent / "live" / "widget.js"
W, H = 320, 240

CASES = {
    # name: (settings, exact)
    "mask": (dict(effect="mask"), True),
    "mask translucent colours": (dict(effect="mask", opacity=1.0, foreground=(255, 0, 0, 90), background=(0, 0, 255, 200)), True),
    "mask blurred": (dict(effect="mask", mask_blur_amount=4), False),
    "bokeh": (dict(effect="bokeh", background_blur_amount=3), False),
    "bokeh strong, soft edge": (dict(effect="bokeh", background_blur_amount=9, edge_blur_amount=9), False),
    "bokeh, other edge": (dict(effect="bokeh", background_blur_amount=5, edge_blur_amount=2), False),
    "replace colour": (dict(effect="replace", background=(0, 177, 64, 255)), True),
    "replace translucent colour": (dict(effect="replace", background=(0, 0, 0, 128)), True),
    "replace picture": (dict(effect="replace", background_image="__picture__"), True),
    "replace, edge blur": (dict(effect="replace", edge_blur_amount=2), False),
    "cutout": (dict(effect="cutout"), True),
    "cutout, edge blur": (dict(effect="cutout", edge_blur_amount=3), False),
}


@pytest.fixture(scope="module")
def inputs(selfie):
    frame = np.array(Image.fromarray(sample_image()).resize((W, H), Image.BILINEAR))
    seg = bgkit.Pipeline(selfie).segment(frame)  # at the model's 256x256 ...
    small = np.array(Image.fromarray(frame).resize((128, 96), Image.BILINEAR))
    seg = bgkit.Pipeline(selfie, internal_resolution="full").segment(small)  # ... and at a frame 2.5x smaller
    backdrop = np.ascontiguousarray(cover(np.array(Image.fromarray(sample_image()).rotate(90)), W, H))
    return frame, encode_matte(seg), backdrop


@pytest.fixture(scope="module")
def page(playwright_sync, tmp_path_factory):
    from .conftest import launch_chromium

    ctx = launch_chromium(playwright_sync, tmp_path_factory.mktemp("chromium-compositing"))
    pg = ctx.new_page()
    pg.goto("about:blank")
    src = base64.b64encode(WIDGET_JS.read_bytes()).decode()
    pg.evaluate("async (src) => { window.bgkitWidget = await import('data:text/javascript;base64,' + src); }", src)
    yield pg
    ctx.close()


def _page_picture(page, frame: np.ndarray, matte: np.ndarray, look_: dict, background: np.ndarray | None) -> np.ndarray:
    h, w = frame.shape[:2]
    rgba = np.dstack([frame, np.full((h, w), 255, np.uint8)])
    args = {
        "frame": base64.b64encode(rgba.tobytes()).decode(), "w": w, "h": h,
        "matte": base64.b64encode(matte.tobytes()).decode(), "mw": matte.shape[1], "mh": matte.shape[0],
        "look": look_, "background": None if background is None else base64.b64encode(background.tobytes()).decode(),
    }
    out = page.evaluate(
        """(a) => {
            const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const frame = new ImageData(new Uint8ClampedArray(bytes(a.frame).buffer), a.w, a.h);
            const img = window.bgkitWidget.composeMatte(frame, bytes(a.matte), a.mw, a.mh, a.look,
                                                        a.background ? bytes(a.background) : null);
            let s = ""; const d = img.data;
            for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
            return btoa(s);
        }""",
        args,
    )
    return np.frombuffer(base64.b64decode(out), np.uint8).reshape(h, w, 4)


@pytest.mark.parametrize("name", list(CASES))
def test_page_draws_what_the_pipeline_draws(page, inputs, name):
    frame, matte, backdrop = inputs
    changes, exact = CASES[name]
    changes = dict(changes)
    background = None
    if changes.get("background_image") == "__picture__":
        changes["background_image"] = backdrop
        background = backdrop
    settings = bgkit.EffectSettings(**changes)
    want = compose_matte(frame, matte, settings, background)
    got = _page_picture(page, frame, matte, look(settings, "id" if background is not None else None), background)
    channels = 4 if settings.effect == "cutout" else 3
    assert want.shape[2] == channels
    diff = np.abs(got[:, :, :channels].astype(int) - want.astype(int)).max(axis=2)
    if exact:
        assert (diff <= 1).mean() >= 0.999, f"{name}: {(diff > 1).sum()} pixels differ by more than 1 (max {diff.max()})"
    else:
        assert diff.mean() <= 2.5 and np.percentile(diff, 99) <= 12, \
            f"{name}: mean {diff.mean():.2f}, p99 {np.percentile(diff, 99):.1f}, max {diff.max()}"
    if channels == 3:
        assert (got[:, :, 3] == 255).all()


def test_a_simulated_page_follows_the_kernel_and_draws_the_pipeline_picture(selfie):
    """The Python stand-in of the page does what widget.js does: after one frame it sends frames
    at the size the kernel asks for, gets a matte back and composites (the same pictures as above)."""
    frame = np.array(Image.fromarray(sample_image()).resize((640, 480), Image.BILINEAR))
    proc = LiveProcessor(selfie, bgkit.EffectSettings(effect="bokeh"))
    client = SimulatedClient(proc.handle_message, fmt="rgba", mode="matte")
    reply, _ = client.roundtrip(frame)
    assert reply["want"] == {"kind": "matte", "width": 256, "height": 256}  # the selfie model's own size
    reply, picture = client.roundtrip(frame)
    assert reply["kind"] == "matte" and (reply["width"], reply["height"]) == (256, 256)
    assert reply["bytes_out"] == 256 * 256 and json.dumps(reply["look"])  # JSON-able
    assert picture.shape == (480, 640, 3)
    kernel_picture = bgkit.Pipeline(selfie, effect="bokeh").process(frame).picture
    assert np.abs(picture.astype(int) - kernel_picture).mean() < 1.0  # only the edges differ
    assert look_settings(reply["look"]).effect == "bokeh"


def test_the_kept_buffers_do_not_leak_between_frames(page, inputs):
    """composeMatte keeps its buffers and canvases between calls: a picture drawn after other sizes
    and effects (blurred ones too, whose canvases are reused) is the picture drawn first."""
    frame, matte, _ = inputs
    for name in ("bokeh", "mask blurred", "cutout, edge blur"):
        settings = bgkit.EffectSettings(**CASES[name][0])
        first = _page_picture(page, frame, matte, look(settings), None)
        small = np.ascontiguousarray(frame[::2, ::3])
        _page_picture(page, small, matte, look(bgkit.EffectSettings(effect="bokeh", background_blur_amount=7)), None)
        _page_picture(page, frame, matte, look(bgkit.EffectSettings(effect="replace", edge_blur_amount=5)), None)
        other = np.ascontiguousarray(frame[::-1, ::-1])  # same size and effect, another frame and matte
        _page_picture(page, other, np.ascontiguousarray(255 - matte[::-1]), look(settings), None)
        np.testing.assert_array_equal(_page_picture(page, frame, matte, look(settings), None), first)
