"""bgkit.figures: panels, titles, PNG files and input errors; bgkit.sample.

Most tests use a tiny stand-in segmenter (an ellipse "person", no network, milliseconds) so they
test the figures, not a model. One test draws the real figures with the selfie model and a second
model built from *random weights* (labelled "random weights (test)" in the figure: not a result).
"""

from __future__ import annotations

import math
import re
import sys

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import bgkit
from bgkit.eval import figures
from bgkit import EffectSettings
from bgkit.io.sample import sample_image
from bgkit.models.standin import stand_in_state_dict


@pytest.fixture(scope="module")
def landscape():
    return bgkit.load_segmenter("selfie_landscape", device="cpu")


@pytest.fixture(scope="module")
def lraspp():
    """LR-ASPP with stand-in weights (random, calibrated): a structural stand-in, never a quality result."""
    return bgkit.load_segmenter("lraspp", device="cpu", weights=stand_in_state_dict("lraspp"), backend="torch")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.fromarray(sample_image()).resize((96, 80)))


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_internal_resolution_figure_has_one_row_per_value(photo, lraspp):
    resolutions = ("low", "medium", 0.6, "full")
    fig = figures.internal_resolution_figure(photo, lraspp, resolutions, repeats=2)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 8
    titles = _titles(fig)
    for row, res in enumerate(resolutions):
        h, w = lraspp.model_input_size(80, 96, res)
        assert titles[2 * row] == f"model input {w}x{h} px"
        assert re.match(r"mask overlay: \d+\.\d ms/call \(median of 2\)$", titles[2 * row + 1])
    assert "'low'" in fig.axes[0].get_ylabel() and "x0.25" in fig.axes[0].get_ylabel()
    assert "internal_resolution" in fig._suptitle.get_text()
    # the model-input panel really is the small picture, drawn over the photo's area
    assert fig.axes[0].images[0].get_array().shape[:2] == lraspp.model_input_size(80, 96, "low")
    # the overlay is the pipeline's picture, edge refinement included
    overlay = fig.axes[3].images[0].get_array()
    pipe = bgkit.Pipeline(lraspp, effect="mask", internal_resolution="medium")
    np.testing.assert_array_equal(np.asarray(overlay), pipe.process(photo).picture)


def test_mask_blur_figure_panels_and_crop(photo, selfie):
    seg = bgkit.Pipeline(selfie).segment(photo)
    fig = figures.mask_blur_figure(photo, seg, (0, 3, 9))
    assert len(fig.axes) == 6
    assert _titles(fig)[:3] == ["mask_blur_amount=0", "mask_blur_amount=3", "mask_blur_amount=9"]
    assert all(t.startswith("edge close-up") for t in _titles(fig)[3:])
    # more blur -> the overlay changes; the zoom row is the crop of the top row
    top = [ax.images[0].get_array() for ax in fig.axes[:3]]
    assert not np.array_equal(top[0], top[2])
    zoom = fig.axes[3].images[0].get_array()
    assert zoom.shape[0] == zoom.shape[1] >= 8
    fig = figures.mask_blur_figure(photo, seg, [0, 2], zoom=False, crop=None)
    assert len(fig.axes) == 2
    fig = figures.mask_blur_figure(photo, seg, [0], crop=(10, 5, 20, 30))
    assert fig.axes[1].images[0].get_array().shape[:2] == (30, 20)


def test_models_figure_two_rows_per_model(photo, selfie, landscape, lraspp):
    fig = figures.models_figure(photo, [selfie, landscape, lraspp])
    assert len(fig.axes) == 6
    titles = _titles(fig)
    assert titles[0].startswith("selfie\ninput 256x256 px") and titles[1].startswith("selfie_landscape\ninput 256x144 px")
    assert titles[2].startswith("lraspp\ninput 48x40 px") and "ms per call" in titles[2]
    assert all(t.startswith("P(person)") for t in titles[3:])
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()),
                                  bgkit.Pipeline(selfie, effect="mask").process(photo).picture)
    fig = figures.models_figure(photo, {"first label": lraspp, "second": selfie}, internal_resolution="full")
    assert len(fig.axes) == 4 and _titles(fig)[0].startswith("first label\ninput 96x80")
    # duplicate names get told apart
    fig = figures.models_figure(photo, [selfie, selfie])
    assert _titles(fig)[1].startswith("selfie (2)")


def test_models_figure_includes_bodypix_and_its_body_parts(bodypix, selfie, sample_path, tmp_path):
    """The seed's own model beside the others, and its part map / pixelation / face blur panels."""
    rgb = bgkit.load_image(sample_path)
    fig = figures.models_figure(rgb, [bodypix, selfie])
    assert _titles(fig)[0].startswith("bodypix\ninput ")
    fig = figures.body_parts_figure(rgb, bodypix)
    titles = _titles(fig)
    assert titles[0] == "photo" and titles[1].startswith("coloured part map (") and titles[3] == "face blurred"
    shown = [np.asarray(ax.images[0].get_array()) for ax in fig.axes]
    seg = bgkit.Pipeline(bodypix, effect="parts").segment(rgb)
    np.testing.assert_array_equal(shown[1], bgkit.Pipeline(bodypix, effect="parts").render(rgb, seg))
    face = np.isin(seg.part_ids, bgkit.FACE_PART_IDS)
    assert face.any() and (shown[3] != rgb)[face].any() and (shown[3] == rgb)[~face].mean() > 0.9
    with pytest.raises(ValueError, match="body-part head"):
        figures.body_parts_figure(rgb, selfie)
    paths = figures.write_figures(rgb, tmp_path, [selfie, bodypix], resolutions=("low",), amounts=(0,), repeats=1,
                                  dpi=40)
    assert [p.name for p in paths] == ["internal_resolution.png", "mask_blur.png", "models.png", "body_parts.png"]


def test_image_grid(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    fig = figures.image_grid({"rgb": photo, "rgba": rgba, "probs": np.linspace(0, 1, 80 * 96).reshape(80, 96)},
                             ncols=2, suptitle="grid")
    assert len(fig.axes) == 4 and _titles(fig)[:3] == ["rgb", "rgba", "probs"]
    assert not fig.axes[3].axison  # the empty fourth cell is hidden
    shown = fig.axes[1].images[0].get_array()
    assert shown.shape == photo.shape  # RGBA composited over the checkerboard
    with pytest.raises(ValueError):
        figures.image_grid([])
    with pytest.raises(ValueError):
        figures.image_grid([photo], ["a", "b"])
    with pytest.raises(ValueError):
        figures.image_grid([np.full((4, 4), 2.0)])


def test_figures_leave_pyplot_alone(photo, selfie):
    """No pyplot figure manager is created (nothing for the caller to close), no backend switch."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    fignums = pyplot.get_fignums() if pyplot else None
    backend = dict.__getitem__(matplotlib.rcParams, "backend")  # rcParams["backend"] would import pyplot
    figures.internal_resolution_figure(photo, selfie, ("low",), repeats=1)
    figures.mask_blur_figure(photo, selfie.segment_person(photo), (0,))
    figures.image_grid([photo])
    if pyplot is None:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert pyplot.get_fignums() == fignums
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend


def test_write_figures_png_files_decode(photo, tmp_path, selfie, landscape):
    a, b = selfie, landscape
    paths = figures.write_figures(photo, tmp_path / "figs", {"a": a, "b": b}, resolutions=("low", "full"),
                                  amounts=(0, 4), repeats=1, dpi=50)
    assert [p.name for p in paths] == ["internal_resolution.png", "mask_blur.png", "models.png"]
    for p in paths:
        with Image.open(p) as im:
            im.load()
            assert im.format == "PNG" and im.width > 100 and im.height > 100
    # one segmenter: no models figure
    paths = figures.write_figures(photo, tmp_path / "one", a, resolutions=("low",), amounts=(0,), repeats=1, dpi=40)
    assert [p.name for p in paths] == ["internal_resolution.png", "mask_blur.png"]
    assert sorted(q.name for q in (tmp_path / "one").iterdir()) == ["internal_resolution.png", "mask_blur.png"]


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda img, s, seg: figures.internal_resolution_figure(img, s, ()), ValueError, "at least one"),
        (lambda img, s, seg: figures.internal_resolution_figure(img, s, ("huge",)), ValueError, "internal_resolution"),
        (lambda img, s, seg: figures.internal_resolution_figure(img, s, ("low",), repeats=0), ValueError, "repeats"),
        (lambda img, s, seg: figures.internal_resolution_figure(img, "selfie"), TypeError, "Segmenter"),
        (lambda img, s, seg: figures.internal_resolution_figure(np.zeros((4, 4), np.float32), s), TypeError, "uint8"),
        (lambda img, s, seg: figures.internal_resolution_figure("/no/such/photo.jpg", s), FileNotFoundError, "photo"),
        (lambda img, s, seg: figures.mask_blur_figure(img, seg, ()), ValueError, "at least one"),
        (lambda img, s, seg: figures.mask_blur_figure(img, seg, (-1,)), ValueError, ">= 0"),
        (lambda img, s, seg: figures.mask_blur_figure(img, seg, (math.nan,)), ValueError, ">= 0"),
        (lambda img, s, seg: figures.mask_blur_figure(img[:40], seg), ValueError, "96x80"),
        (lambda img, s, seg: figures.mask_blur_figure(img, seg.mask), TypeError, "Segmentation"),
        (lambda img, s, seg: figures.mask_blur_figure(img, seg, crop=(90, 0, 20, 20)), ValueError, "crop"),
        (lambda img, s, seg: figures.mask_blur_figure(img, seg, settings={"opacity": 1}), TypeError, "EffectSettings"),
        (lambda img, s, seg: figures.models_figure(img, [s]), ValueError, "two or more"),
        (lambda img, s, seg: figures.models_figure(img, s), ValueError, "two or more"),
        (lambda img, s, seg: figures.models_figure(img, "selfie"), TypeError, "segmenters"),
        (lambda img, s, seg: figures.models_figure(img, [s, 3]), TypeError, "Segmenter"),
        (lambda img, s, seg: figures.write_figures(img, "/tmp/unused", []), ValueError, "at least one"),
    ],
)
def test_bad_input_errors(photo, call, exc, match, selfie):
    s = selfie
    seg = s.segment_person(photo)
    with pytest.raises(exc, match=match):
        call(photo, s, seg)


def test_write_figures_refuses_a_file_as_folder(photo, tmp_path, selfie):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        figures.write_figures(photo, f, selfie)


@pytest.mark.slow
def test_real_figures_selfie_and_random_weights_model(tmp_path):
    """The real thing on the bundled photo: selfie (real weights) next to DeepLabV3 built from
    random weights, labelled as such (a structural test, not a quality result)."""
    from torchvision.models import segmentation as tvseg

    image = sample_image()
    selfie = bgkit.load_segmenter("selfie", device="cpu")
    torch.manual_seed(0)
    state = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21,
                                               aux_loss=True).state_dict()
    rand = bgkit.load_segmenter("deeplabv3", device="cpu", weights=state)
    paths = figures.write_figures(
        image, tmp_path, {"selfie": selfie, "deeplabv3, random weights (test)": rand},
        resolutions=("low", "medium"), amounts=(0, 8), repeats=1, dpi=60,
        settings=EffectSettings(opacity=0.8),
    )
    assert [p.name for p in paths] == ["internal_resolution.png", "mask_blur.png", "models.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG"

