"""The still-photo notebook (headless, nbclient) and its StillExplorer widget.

The notebook runs top to bottom on the bundled sample photo in a fresh ``python3`` kernel, with
``BGKIT_OUT_DIR`` pointing into a temporary folder (nothing is written into the repo).
The explorer tests use the real selfie model, counted (and optionally slowed or failing), to test
the widget's logic -- what re-segments, what only re-renders, coalescing, threads -- in seconds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bgkit
from bgkit import EffectSettings
from bgkit.pipeline import render

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "01_still_image.ipynb"


# ---------------------------------------------------------------------------------------------
# the notebook


@pytest.mark.slow
def test_notebook_runs_headless_and_writes_the_figures(tmp_path, monkeypatch, run_notebook, bodypix_mirror):
    out = tmp_path / "out"
    monkeypatch.setenv("BGKIT_OUT_DIR", str(out))
    monkeypatch.setenv("BGKIT_BODYPIX_URL", bodypix_mirror.as_uri())  # BodyPix's files from the offline copy
    monkeypatch.setenv("BGKIT_FIGURE_REPEATS", "1")
    monkeypatch.delenv("BGKIT_PHOTO", raising=False)
    run = run_notebook(NOTEBOOK, tmp_path)
    text, mimes = run.stream_text, run.mimes
    assert "bundled sample photo" in text
    assert " on cpu" in text or " on cuda" in text or " on mps" in text  # segmenter.describe()
    assert "application/vnd.jupyter.widget-view+json" in mimes  # the explorer (and the upload button)
    assert mimes.count("image/png") >= 13  # the photo, four effect grids, three figures, five BodyPix figures
    assert "BodyPix 2.0 MobileNetV1 0.75" in text  # the BodyPix section ran (describe())
    assert "body parts found: left_face" in text and "people; pose scores:" in text

    folder = out / "01_still_image"
    figures = folder / "figures"
    names = {"internal_resolution.png", "mask_blur.png", "models.png"}  # selfie + selfie_landscape at least
    written = {p.name for p in figures.glob("*.png")}
    assert names <= written <= names | {"body_parts.png"}  # body parts where BodyPix was already in the cache
    for name in names:
        assert str(figures / name) in text  # the paths were printed
        with Image.open(figures / name) as im:
            im.load()
            assert im.width > 300 and im.height > 300
    with Image.open(folder / "cutout.png") as im:
        assert im.mode == "RGBA" and im.size == (512, 512)


# ---------------------------------------------------------------------------------------------
# StillExplorer


def counting(real, name: str = "selfie", delay: float = 0.0):
    """The real segmenter ``real`` under another name, counting its runs (and how many at once),
    optionally slow or failing: for testing what the explorer re-segments, coalesces and survives."""
    import dataclasses

    from bgkit.models.segmenter import Segmenter

    class Counting(Segmenter):
        def __init__(self) -> None:
            self.__dict__.update(real.__dict__)
            self.spec = dataclasses.replace(real.spec, name=name)
            self.calls, self.active, self.max_active = 0, 0, 0
            self.delay, self.fail, self.lock = delay, False, threading.Lock()

        def infer(self, frame01, internal_resolution=None, state=None, **extra):
            with self.lock:
                self.calls += 1
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                if self.delay:
                    time.sleep(self.delay)
                if self.fail:
                    raise RuntimeError("stand-in failure")
                return real.infer(frame01, internal_resolution, state, **extra)
            finally:
                with self.lock:
                    self.active -= 1

    return Counting()


@pytest.fixture
def photo():
    from bgkit.io.sample import sample_image

    return np.asarray(Image.fromarray(sample_image()).resize((64, 48)))


@pytest.fixture
def explorer_cls():
    from bgkit.widgets import StillExplorer

    return StillExplorer


def test_explorer_first_picture_is_ready_at_once(explorer_cls, photo, tmp_path, selfie):
    seg = counting(selfie)
    e = explorer_cls(photo, segmenter=seg, models={}, save_dir=tmp_path)
    assert e.render_count == 1 and e.segment_count == 1 and seg.calls == 1
    assert e.output.shape == (48, 64, 3)
    assert e.preview.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "segmentation" in e.status.value and "model input <b>256x256</b>" in e.status.value
    assert list(e.controls["model"].options) == ["selfie"]
    assert isinstance(e.settings, EffectSettings) and e.settings == EffectSettings()
    # the threshold slider shows the model's own default until it is moved
    assert e.controls["segmentation_threshold"].value == selfie.default_threshold
    np.testing.assert_array_equal(e.output, bgkit.Pipeline(selfie).process(photo).picture)  # the one data path
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # display(explorer) works
    e.close()


def test_controls_come_from_the_schema(explorer_cls, photo, selfie):
    from bgkit import SCHEMA

    e = explorer_cls(photo, segmenter=selfie, models={})
    for name in ("opacity", "mask_blur_amount", "background_blur_amount", "edge_blur_amount", "edge_softness"):
        knob, w = SCHEMA[name], e.controls[name]
        assert (w.min, w.max, w.step) == (knob.lo, knob.hi, knob.step), name
        assert f"bgkit-{name.replace('_', '-')}" in w._dom_classes
    assert list(e.controls["effect"].options) == list(SCHEMA["effect"].choices)
    e.close()


def test_compositing_knobs_render_without_segmenting_again(explorer_cls, photo, selfie):
    seg = counting(selfie)
    e = explorer_cls(photo, segmenter=seg, models={})
    changes = [
        dict(opacity=0.3), dict(mask_blur_amount=4), dict(effect="bokeh"), dict(background_blur_amount=9),
        dict(edge_blur_amount=2), dict(effect="replace", background=(10, 200, 30, 255)),
        dict(effect="cutout"), dict(flip_horizontal=True),
        dict(effect="mask", foreground="#ff000080", background=(0, 0, 255)),
    ]
    for change in changes:
        e.set(**change)
        assert e.wait(10)
        s = e.settings
        np.testing.assert_array_equal(e.output, render(photo, e.segmentation, s))
    assert seg.calls == 1 and e.segment_count == 1
    assert e.render_count == 1 + len(changes)
    assert e.settings.foreground == (255, 0, 0, 128) and e.settings.background == (0, 0, 255, 255)
    assert e.controls["opacity"].value == 0.3  # the controls moved with set()
    assert e.output.shape == (48, 64, 3)
    e.set(effect="cutout")
    e.wait(10)
    assert e.output.shape == (48, 64, 4)
    e.close()


def test_model_resolution_threshold_and_softness_segment_again(explorer_cls, photo, selfie):
    seg = counting(selfie)
    e = explorer_cls(photo, segmenter=seg, models={})
    c = e.controls
    e.set(segmentation_threshold=0.6)
    e.wait(10)
    assert seg.calls == 2 and e.segmentation.threshold == 0.6
    e.set(internal_resolution="low")
    e.wait(10)
    assert seg.calls == 3 and c["internal_resolution"].value == "low" and e.segmentation.model_input_size == (16, 16)
    c["internal_resolution"].value = "high"  # the menu, as a person would
    e.wait(10)
    assert e.settings.internal_resolution == "high" and seg.calls == 4
    e.set(internal_resolution=0.75)  # a number: shown in the menu too
    e.wait(10)
    assert c["internal_resolution"].value == 0.75 and seg.calls == 5
    e.set(edge_softness=3)  # the alpha is part of the segmentation
    e.wait(10)
    assert e.segment_count == 6
    e.close()


def test_models_load_lazily_once_per_explorer(explorer_cls, photo, monkeypatch, selfie):
    import bgkit.widgets.still as still

    loaded = []

    def fake_load(name, device="auto", weights=None):
        loaded.append(name)
        return counting(selfie, name)

    monkeypatch.setattr(still, "load_segmenter", fake_load)
    first = counting(selfie, "first")
    e = explorer_cls(photo, segmenter=first, models={"first": first, "other": None})
    assert loaded == [] and e.segmenters["other"] is None
    for name in ("other", "first", "other"):
        e.set(model=name)
        e.wait(10)
        assert e.segmentation.model == name
    assert loaded == ["other"] and e.segmenters["other"].name == "other"
    e2 = explorer_cls(photo, segmenter=first, models={"first": first, "other": None})
    e2.set(model="other")
    e2.wait(10)
    assert loaded == ["other", "other"]  # no cache shared between explorers
    # default menu: the models on this machine, plus the one given
    e3 = explorer_cls(photo, segmenter=first)
    assert list(e3.controls["model"].options)[:-1] == bgkit.available_models()
    for x in (e, e2, e3):
        x.close()


def test_updates_coalesce_and_threads_are_safe(explorer_cls, photo, selfie):
    seg = counting(selfie, delay=0.15)
    e = explorer_cls(photo, segmenter=seg, models={})
    c = e.controls
    values = [round(0.05 * i, 2) for i in range(1, 20)]

    def move(offset):
        for v in values[offset::3]:
            c["segmentation_threshold"].value = v  # as a comm thread would
            c["opacity"].value = v
            time.sleep(0.01)

    threads = [threading.Thread(target=move, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert e.wait(30)
    # 19 x 2 x ... requests, a handful of pictures: stale settings were dropped, not queued
    assert e.render_count <= 6 and seg.calls <= 6, (e.render_count, seg.calls)
    assert seg.max_active == 1  # never two pictures at once
    assert e.rendered_settings == e.settings  # the newest settings won
    np.testing.assert_array_equal(e.output, render(photo, e.segmentation, e.settings))
    e.close()


def test_save_and_errors(explorer_cls, photo, tmp_path, selfie):
    seg = counting(selfie)
    e = explorer_cls(photo, segmenter=seg, models={}, save_dir=tmp_path / "saved")
    p = e.save()
    assert p.parent == tmp_path / "saved" and p.suffix == ".png"
    assert "saved:" in e.status.value and str(p.resolve()) in e.status.value
    with Image.open(p) as im:
        assert im.size == (64, 48)
    assert e.save(tmp_path / "x.png") == tmp_path / "x.png"

    with pytest.raises(TypeError, match="unknown"):
        e.set(colour="red")
    with pytest.raises(ValueError, match="effect"):
        e.set(effect="sepia")
    with pytest.raises(ValueError, match="opacity"):
        e.set(opacity=2)
    with pytest.raises(ValueError):
        e.set(internal_resolution="ultra")
    with pytest.raises(ValueError):
        e.set(foreground="not a colour")
    with pytest.raises(ValueError, match="model must be one of"):
        e.set(model="nope")
    with pytest.raises(TypeError):
        explorer_cls(photo, segmenter="selfie")
    # a control moved to a refused value says so in the status line and springs back
    e.controls["opacity"].value = 0.5
    assert e.settings.opacity == 0.5

    # a failing model shows the error in the status line; the explorer keeps working
    seg.fail = True
    e.set(segmentation_threshold=0.4)
    e.wait(10)
    assert isinstance(e.last_error, RuntimeError) and "stand-in failure" in e.status.value
    assert "color:#b00" in e.status.value
    seg.fail = False
    e.set(segmentation_threshold=0.45)
    e.wait(10)
    assert e.segmentation.threshold == 0.45 and "color:#b00" not in e.status.value
    e.close()


def test_pick_image_upload_path_or_sample(tmp_path):
    import datetime
    import io

    import ipywidgets as W

    from bgkit.widgets.still import image_from_upload, pick_image

    upload = W.FileUpload(accept="image/*")
    img, source = pick_image(upload, None)
    assert img.shape == (512, 512, 3) and source.startswith("bundled sample photo")
    assert image_from_upload(upload) is None
    p = tmp_path / "mine.png"
    Image.new("RGB", (12, 9), (0, 255, 0)).save(p)
    img, source = pick_image(upload, p)
    assert img.shape == (9, 12, 3) and source == str(p)
    buf = io.BytesIO()
    Image.new("RGB", (10, 8), (255, 0, 0)).save(buf, "PNG")
    upload.value = ({"name": "red.png", "type": "image/png", "size": buf.tell(), "content": memoryview(buf.getvalue()),
                     "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    img, source = pick_image(upload, p)  # an upload wins over a path
    assert img.shape == (8, 10, 3) and tuple(img[0, 0]) == (255, 0, 0) and "red.png" in source
