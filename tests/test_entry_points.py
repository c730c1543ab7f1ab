"""Every entry point makes the same picture: the bundled sample, the same settings, identical pixels.

Still explorer, figures, ``bgkit effect``, ``bgkit demo``, ``bgkit video``, ``process_video``,
the live processor and the README's example all go through one :class:`bgkit.Pipeline`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bgkit
from bgkit.cli import main
from bgkit.io.sample import sample_image, sample_image_path

REPO = Path(__file__).resolve().parents[1]

LOOKS = {
    "mask": (dict(effect="mask", opacity=0.6, mask_blur_amount=2, flip_horizontal=True),
             ["--effect", "mask", "--opacity", "0.6", "--mask-blur", "2", "--flip"]),
    "bokeh": (dict(effect="bokeh", background_blur_amount=6), ["--effect", "bokeh", "--background-blur", "6"]),
    "replace": (dict(effect="replace", background=(20, 200, 40, 255), edge_blur_amount=1),
                ["--effect", "replace", "--background", "20,200,40", "--edge-blur", "1"]),
    "cutout": (dict(effect="cutout", segmentation_threshold=0.6), ["--effect", "cutout", "--threshold", "0.6"]),
}


@pytest.fixture(scope="module")
def image():
    return sample_image()


@pytest.fixture(scope="module")
def expected(selfie, image):
    return {name: bgkit.Pipeline(selfie, **kw).process(image).picture for name, (kw, _) in LOOKS.items()}


@pytest.mark.parametrize("look", list(LOOKS))
def test_cli_effect(look, expected, tmp_path):
    out = tmp_path / f"{look}.png"
    assert main(["effect", str(sample_image_path()), "-o", str(out), "--model", "selfie", *LOOKS[look][1]]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected[look])


def test_process_frame_and_the_still_explorer(selfie, image, expected):
    from bgkit.widgets import StillExplorer

    explorer = StillExplorer(image, segmenter=selfie, models={})
    for look, (kw, _) in LOOKS.items():
        np.testing.assert_array_equal(bgkit.process_frame(image, selfie, bgkit.EffectSettings(**kw))[0], expected[look])
        explorer.set(**kw)
        assert explorer.wait(30)
        np.testing.assert_array_equal(explorer.output, expected[look])
        explorer.set(**{k: bgkit.EffectSettings().__getattribute__(k) for k in kw})  # back to the defaults
    explorer.close()


def test_the_figures(selfie, image, expected):
    from bgkit.eval import figures

    kw = LOOKS["mask"][0]
    settings = bgkit.EffectSettings(**kw)
    fig = figures.internal_resolution_figure(image, selfie, [None], repeats=1, settings=settings)
    # the figure draws the mask effect unmirrored
    np.testing.assert_array_equal(np.asarray(fig.axes[1].images[0].get_array()), np.fliplr(expected["mask"]))


def test_the_live_processor(selfie, image, expected):
    from bgkit.live.processor import LiveProcessor
    from bgkit.live.protocol import SimulatedClient

    for look, (kw, _) in LOOKS.items():
        live = LiveProcessor(selfie, bgkit.EffectSettings(**kw), reply_format="rgba")
        _, picture = SimulatedClient(live.handle_message, fmt="rgba").roundtrip(image)
        np.testing.assert_array_equal(picture, expected[look])  # the first frame of a stream is the still


def test_video_of_one_frame_and_the_demo(selfie, image, expected, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(image).save(frames / "00000.png")
    out = tmp_path / "out"
    assert main(["video", str(frames), str(out), "--model", "selfie", "-q", *LOOKS["cutout"][1]]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out / "00000.png")), expected["cutout"])
    summary = bgkit.process_video(frames, tmp_path / "py", bgkit.Pipeline(selfie, **LOOKS["bokeh"][0]), progress=False)
    assert summary.frames == 1
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "py" / "00000.png")), expected["bokeh"])
    demo = tmp_path / "demo"
    assert main(["demo", "--out", str(demo), "--model", "selfie", "--threshold", "0.6"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(demo / "cutout.png")), expected["cutout"])


def test_the_readme_example(selfie, expected, tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    code = re.search(r"## Use it from Python\s+```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    Image.open(sample_image_path()).save(tmp_path / "photo.jpg", quality=100)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "beach.jpg")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    photo = bgkit.load_image(tmp_path / "photo.jpg")
    np.testing.assert_array_equal(namespace["bokeh"], bgkit.Pipeline(namespace["segmenter"], effect="bokeh",
                                                                   background_blur_amount=8).process(photo).picture)
    assert (tmp_path / "cutout.png").is_file()
