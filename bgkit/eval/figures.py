"""Figures that explain the BodyPix knobs on one photo (matplotlib, object-oriented API only).

Every function returns a new :class:`matplotlib.figure.Figure` built without ``pyplot``, so no
global figure state is created or touched: nothing to close, nothing leaks between calls, and it
works under any backend (``Agg`` included). Show one in Jupyter as the last expression of a cell
(with ``%matplotlib inline``) or save it with ``fig.savefig("x.png")``.

* :func:`internal_resolution_figure` -- the ``internalResolution`` trade-off: what the model sees,
  the mask it gives and the time per call, for low / medium / high / full.
* :func:`mask_blur_figure` -- ``draw_mask``'s ``maskBlurAmount``, with a close-up of one edge.
* :func:`models_figure` -- several segmenters on the same photo.
* :func:`image_grid` -- any pictures side by side (RGBA over a checkerboard).
* :func:`write_figures` -- the three figures as PNG files (what ``bgkit figures`` writes).

Segmenters may be given as one :class:`~bgkit.Segmenter`, a sequence of them, or a mapping
``{label: segmenter}`` (the label is used in titles, e.g. ``"deeplabv3 (random weights, test)"``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from ..core.segmentation import InternalResolution, Segmentation, resolve_internal_resolution
from ..pipeline.settings import EffectSettings
from ..io.images import ImageLike, load_image
from ..pipeline import Pipeline, render

__all__ = [
    "DEFAULT_AMOUNTS",
    "DEFAULT_RESOLUTIONS",
    "FIGURE_FILES",
    "body_parts_figure",
    "image_grid",
    "internal_resolution_figure",
    "mask_blur_figure",
    "models_figure",
    "write_figures",
]

DEFAULT_RESOLUTIONS: tuple[InternalResolution, ...] = ("low", "medium", "high", "full")
DEFAULT_AMOUNTS: tuple[float, ...] = (0, 2, 4, 8, 16)
#: File names :func:`write_figures` uses, by figure.
FIGURE_FILES = {
    "internal_resolution": "internal_resolution.png",
    "mask_blur": "mask_blur.png",
    "models": "models.png",
    "body_parts": "body_parts.png",
}

#: What the figures accept as "segmenters".
Segmenters = Union[Any, Sequence[Any], Mapping[str, Any]]

_PANEL_IN = 3.0  # inches per image panel


# ----------------------------------------------------------------------------------------------
# helpers


def _check_segmenter(seg: Any, where: str) -> Any:
    from ..models.segmenter import Segmenter

    if not isinstance(seg, Segmenter):
        raise TypeError(f"{where}: expected a bgkit Segmenter (see bgkit.load_segmenter); got {type(seg).__name__}")
    return seg


def _segmenter_items(segmenters: Segmenters) -> list[tuple[str, Any]]:
    """Normalise ``segmenters`` to a list of (label, segmenter)."""
    if hasattr(segmenters, "segment_person"):
        return [(str(getattr(segmenters, "name", "model")), segmenters)]
    if isinstance(segmenters, Mapping):
        items = [(str(k), v) for k, v in segmenters.items()]
    elif isinstance(segmenters, (str, bytes)) or not isinstance(segmenters, (Sequence, set, frozenset)):
        raise TypeError(
            "segmenters must be a Segmenter, a sequence of Segmenters or a {label: Segmenter} mapping; "
            f"got {type(segmenters).__name__}"
        )
    else:
        items = [(str(getattr(s, "name", f"model {i + 1}")), s) for i, s in enumerate(segmenters)]
    seen: dict[str, int] = {}
    unique = []
    for label, seg in items:
        _check_segmenter(seg, f"segmenter {label!r}")
        seen[label] = seen.get(label, 0) + 1
        unique.append((label if seen[label] == 1 else f"{label} ({seen[label]})", seg))
    return unique


def _check_repeats(repeats: Any) -> int:
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a whole number >= 1; got {repeats!r}")
    return int(repeats)


def _mask_settings(settings: EffectSettings | None, threshold: float | None = None, **changes: Any) -> EffectSettings:
    if settings is not None and not isinstance(settings, EffectSettings):
        raise TypeError(f"settings must be an EffectSettings; got {type(settings).__name__}")
    base = settings if settings is not None else EffectSettings()
    if threshold is not None:
        changes["segmentation_threshold"] = threshold
    return base.updated(effect="mask", flip_horizontal=False, **changes)


def _timed_segment(pipe: Pipeline, rgb: np.ndarray, repeats: int, warmup: bool) -> tuple[Segmentation, float]:
    """Segment ``repeats`` times with the pipeline (after one untimed warm-up call); return the
    last result and the median wall time per call in milliseconds."""
    if warmup:
        pipe.segment(rgb)
    times = []
    seg = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        seg = pipe.segment(rgb)
        times.append((time.perf_counter() - t0) * 1000.0)
    assert seg is not None
    return seg, statistics.median(times)


def _resolution_label(value: InternalResolution) -> str:
    if value is None:
        return "model default"
    scale = resolve_internal_resolution(value)
    if isinstance(value, str):
        return f"{value!r} (x{scale:g})"
    return f"x{scale:g}"


def _device_of(segmenter: Any) -> str:
    return str(getattr(segmenter, "device", "?"))


def _checkerboard(h: int, w: int, square: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    light = ((yy // square + xx // square) % 2 == 0)
    return np.where(light[..., None], 235, 200).astype(np.uint8).repeat(3, axis=2)


def _displayable(picture: np.ndarray) -> np.ndarray:
    """RGB uint8 for imshow: RGBA is composited over a grey checkerboard so transparency shows;
    a 2-D float array in 0..1 (e.g. probabilities) is shown as grey levels."""
    arr = np.asarray(picture)
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min(initial=0.0) < 0.0 or arr.max(initial=0.0) > 1.0:
            raise ValueError("float pictures must be 2-D arrays with values in 0..1")
        arr = (arr * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 4 and arr.dtype == np.uint8:
        a = arr[..., 3:4].astype(np.float32) / 255.0
        board = _checkerboard(arr.shape[0], arr.shape[1]).astype(np.float32)
        return (arr[..., :3] * a + board * (1.0 - a) + 0.5).astype(np.uint8)
    return load_image(arr)


def _show(ax: Any, picture: np.ndarray, title: str | None = None, **kw: Any) -> None:
    ax.imshow(_displayable(picture), **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _new_figure(nrows: int, ncols: int, panel: float = _PANEL_IN, extra_h: float = 0.9) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(panel * ncols, panel * nrows + extra_h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _footer(fig: Figure, text: str) -> None:
    fig.get_layout_engine().set(h_pad=0.06)
    fig.supxlabel(text, fontsize=7.5, color="0.35")


# ----------------------------------------------------------------------------------------------
# figures


def internal_resolution_figure(
    image: ImageLike,
    segmenter: Any,
    resolutions: Sequence[InternalResolution] = DEFAULT_RESOLUTIONS,
    repeats: int = 3,
    *,
    threshold: float | None = None,
    settings: EffectSettings | None = None,
    warmup: bool = True,
) -> Figure:
    """The ``internalResolution`` figure of the BodyPix demo: one row per value.

    Each row shows what the model sees (the photo scaled to the model input, drawn at the same
    size so coarse inputs look blocky) and the resulting mask overlay (a :class:`bgkit.Pipeline`
    with effect "mask"), titled with the model input size and the median time per segmentation
    over ``repeats`` calls (after one untimed warm-up call, unless ``warmup=False``).

    Args:
        image: the photo (anything :func:`bgkit.load_image` takes).
        segmenter: a loaded :class:`~bgkit.Segmenter`.
        resolutions: internal resolutions to compare ("low", "medium", "high", "full" or numbers).
        repeats: timed calls per value (>= 1); the median is shown.
        threshold: segmentation threshold (None: the settings', else the model's default).
        settings: the pipeline's settings (refinement, colours, opacity, mask blur); effect is
            forced to "mask".

    Returns:
        A figure with ``2 * len(resolutions)`` axes (row i: model input, mask overlay).
    """
    rgb = load_image(image)
    _check_segmenter(segmenter, "internal_resolution_figure")
    repeats = _check_repeats(repeats)
    resolutions = list(resolutions)
    if not resolutions:
        raise ValueError("resolutions must name at least one internal resolution")
    for r in resolutions:
        if r is not None:
            resolve_internal_resolution(r)  # raises on a bad value before any work is done
    look = _mask_settings(settings, threshold)
    pipe = Pipeline(segmenter, look)
    h, w = rgb.shape[:2]

    fig, axes = _new_figure(len(resolutions), 2, panel=3.4)
    name = getattr(segmenter, "name", "model")
    fig.suptitle(f"internal_resolution ({name}):\nmodel input size vs. mask quality and speed", fontsize=11)
    for row, res in enumerate(resolutions):
        pipe.settings = look.updated(internal_resolution=res)
        seg, ms = _timed_segment(pipe, rgb, repeats, warmup)
        in_h, in_w = seg.model_input_size
        seen = np.asarray(Image.fromarray(rgb).resize((max(1, in_w), max(1, in_h)), Image.BILINEAR))
        ax_in, ax_out = axes[row]
        # extent: draw the small model input over the same area as the photo
        _show(ax_in, seen, f"model input {in_w}x{in_h} px", interpolation="nearest", extent=(0, w, h, 0))
        ax_in.set_ylabel(f"internal_resolution\n{_resolution_label(res)}", fontsize=9)
        overlay = pipe.render(rgb, seg)
        _show(ax_out, overlay, f"mask overlay: {ms:.1f} ms/call (median of {repeats})")
    _footer(
        fig,
        f"{segmenter.describe()}\nphoto {w}x{h} px, threshold {pipe.threshold():g}; "
        "time = wall clock per segmentation on this machine (indicative).",
    )
    return fig


def _edge_crop(mask: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a ``size`` x ``size`` window centred on a point of the mask's outline
    (a tenth of the way down it: the head, in a portrait), or the image centre when the mask has
    no edge."""
    h, w = mask.shape
    size = int(max(8, min(size, h, w)))
    m = mask.astype(bool)
    edge = np.zeros_like(m)
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    ys, xs = np.nonzero(edge)
    if len(ys):
        order = np.lexsort((xs, ys))  # by row, then column
        i = order[len(order) // 10]
        cy, cx = int(ys[i]), int(xs[i])
    else:
        cy, cx = h // 2, w // 2
    x0 = int(np.clip(cx - size // 2, 0, w - size))
    y0 = int(np.clip(cy - size // 2, 0, h - size))
    return x0, y0, size, size


def mask_blur_figure(
    image: ImageLike,
    segmentation: Segmentation,
    amounts: Sequence[float] = DEFAULT_AMOUNTS,
    *,
    settings: EffectSettings | None = None,
    zoom: bool = True,
    crop: tuple[int, int, int, int] | None = None,
) -> Figure:
    """``draw_mask`` for each ``mask_blur_amount`` side by side, plus a zoomed edge row.

    Args:
        image: the photo that ``segmentation`` was made from.
        segmentation: its :class:`~bgkit.Segmentation` (same width and height).
        amounts: mask blur amounts (Gaussian sigma in pixels, >= 0).
        settings: the look of the overlay (colours, opacity); effect is forced to "mask".
        zoom: add a second row with a close-up (nearest-neighbour, no smoothing) of one edge.
        crop: (x, y, width, height) of the close-up; default: a square around a point of the
            person's outline, a quarter of the shorter side wide.

    Returns:
        A figure with ``len(amounts)`` axes, or ``2 * len(amounts)`` when ``zoom``.
    """
    rgb = load_image(image)
    if not isinstance(segmentation, Segmentation):
        raise TypeError(f"segmentation must be a bgkit Segmentation; got {type(segmentation).__name__}")
    h, w = rgb.shape[:2]
    if (segmentation.height, segmentation.width) != (h, w):
        raise ValueError(
            f"segmentation is {segmentation.width}x{segmentation.height} but the image is {w}x{h}; "
            "segment this image (or resize it) first"
        )
    amounts = list(amounts)
    if not amounts:
        raise ValueError("amounts must hold at least one mask blur amount")
    for a in amounts:
        if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)) or not math.isfinite(a) or a < 0:
            raise ValueError(f"mask blur amounts must be finite numbers >= 0; got {a!r}")
    if crop is None:
        crop = _edge_crop(segmentation.mask, max(32, min(h, w) // 4))
    else:
        cx, cy, cw, ch = (int(v) for v in crop)
        if cw < 1 or ch < 1 or cx < 0 or cy < 0 or cx + cw > w or cy + ch > h:
            raise ValueError(f"crop {crop!r} must be (x, y, width, height) inside the {w}x{h} image")
        crop = (cx, cy, cw, ch)
    x0, y0, cw, ch = crop

    fig, axes = _new_figure(2 if zoom else 1, len(amounts))
    fig.suptitle("mask_blur_amount: how soft the mask edge is in draw_mask", fontsize=11)
    for col, amount in enumerate(amounts):
        out = render(rgb, segmentation, _mask_settings(settings, mask_blur_amount=float(amount)))
        ax = axes[0, col]
        _show(ax, out, f"mask_blur_amount={amount:g}")
        if zoom:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), cw, ch, fill=False, edgecolor="#ffcc00", linewidth=1.2))
            _show(axes[1, col], out[y0 : y0 + ch, x0 : x0 + cw], f"edge close-up, blur {amount:g}",
                  interpolation="nearest")
    if zoom:
        axes[1, 0].set_ylabel(f"zoom: {cw}x{ch} px at ({x0}, {y0})", fontsize=9)
    _footer(
        fig,
        f"model {segmentation.model or '?'} (input {segmentation.model_input_size[1]}x"
        f"{segmentation.model_input_size[0]}), threshold {segmentation.threshold:g}; "
        "blur = Gaussian sigma in pixels applied to the coloured mask before blending.",
    )
    return fig


def models_figure(
    image: ImageLike,
    segmenters: Segmenters,
    *,
    internal_resolution: InternalResolution = None,
    threshold: float | None = None,
    repeats: int = 1,
    settings: EffectSettings | None = None,
    warmup: bool = True,
) -> Figure:
    """Two or more segmenters side by side on the same photo, each through a :class:`bgkit.Pipeline`.

    One column per model: the mask overlay (titled with the model input size and the median
    time per call) above the person-probability map.

    Args:
        image: the photo.
        segmenters: 2+ segmenters (sequence, or ``{label: segmenter}`` to choose the titles).
        internal_resolution: passed to every model (None = each model's own default).
        threshold: segmentation threshold (None: the settings', else each model's default).
        repeats: timed calls per model (median shown), after one warm-up call.
        settings: the pipeline's settings; effect is forced to "mask".

    Returns:
        A figure with ``2 * len(segmenters)`` axes.
    """
    rgb = load_image(image)
    items = _segmenter_items(segmenters)
    if len(items) < 2:
        raise ValueError(f"models_figure compares two or more segmenters; got {len(items)}")
    repeats = _check_repeats(repeats)
    if internal_resolution is not None:
        resolve_internal_resolution(internal_resolution)
    look = _mask_settings(settings, threshold, internal_resolution=internal_resolution)
    h, w = rgb.shape[:2]

    fig, axes = _new_figure(2, len(items))
    fig.suptitle(f"Models on the same photo (internal_resolution: {_resolution_label(internal_resolution)})",
                 fontsize=11)
    devices = []
    for col, (label, segmenter) in enumerate(items):
        pipe = Pipeline(_check_segmenter(segmenter, f"segmenter {label!r}"), look)
        seg, ms = _timed_segment(pipe, rgb, repeats, warmup)
        in_h, in_w = seg.model_input_size
        _show(axes[0, col], pipe.render(rgb, seg), f"{label}\ninput {in_w}x{in_h} px, {ms:.1f} ms per call")
        axes[1, col].imshow(seg.probabilities, cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes[1, col].set_xticks([])
        axes[1, col].set_yticks([])
        axes[1, col].set_title(f"P(person); {100.0 * seg.mask.mean():.1f}% of pixels > {seg.threshold:g}", fontsize=9)
        devices.append(_device_of(segmenter))
    axes[0, 0].set_ylabel("mask overlay", fontsize=9)
    axes[1, 0].set_ylabel("probability (black 0, yellow 1)", fontsize=9)
    _footer(
        fig,
        f"photo {w}x{h} px on {', '.join(sorted(set(devices)))}; times: median of {repeats} call(s) after a "
        "warm-up, wall clock (indicative).",
    )
    return fig


def body_parts_figure(
    image: ImageLike,
    segmenter: Any,
    *,
    internal_resolution: InternalResolution = None,
    threshold: float | None = None,
    settings: EffectSettings | None = None,
) -> Figure:
    """BodyPix's body-part drawings of one photo: the coloured part map, the pixelated part map
    and the face blurred (for privacy), beside the photo, each through a :class:`bgkit.Pipeline`.

    Args:
        image: the photo.
        segmenter: a model with a body-part head (``bodypix``, ``bodypix_050``, ...).
        internal_resolution, threshold: as for the pipeline (None: the model's defaults).
        settings: the pipeline's settings (opacity, pixel_cell_width, background_blur_amount
            for the face blur ...); the effect is set per panel.

    Returns:
        A figure with 4 axes.
    """
    rgb = load_image(image)
    segmenter = _check_segmenter(segmenter, "body_parts_figure")
    if not segmenter.has_parts:
        raise ValueError(f"body_parts_figure needs a model with a body-part head (bodypix, bodypix_050, ...); "
                         f"{segmenter.name!r} has none")
    base = settings if settings is not None else EffectSettings()
    changes: dict[str, Any] = {"internal_resolution": internal_resolution}
    if threshold is not None:
        changes["segmentation_threshold"] = threshold
    pipe = Pipeline(segmenter, base.updated(effect="parts", **changes))
    seg = pipe.segment(rgb)
    parts = sorted(int(i) for i in np.unique(seg.part_ids) if i >= 0)
    panels = {"photo": rgb, f"coloured part map ({len(parts)} parts found)": pipe.render(rgb, seg)}
    for effect, title in (("pixelated", "pixelated part map"), ("blur_face", "face blurred")):
        pipe.update(effect=effect)
        panels[title] = pipe.render(rgb, seg)
    fig, axes = _new_figure(1, len(panels))
    fig.suptitle(f"Body parts from {segmenter.name}", fontsize=11)
    for ax, (title, picture) in zip(axes.flat, panels.items()):
        _show(ax, picture, title)
    h, w = rgb.shape[:2]
    in_h, in_w = seg.model_input_size
    _footer(fig, f"photo {w}x{h} px, model input {in_w}x{in_h} px; 24 parts as BodyPix numbers them, "
                 "in its rainbow palette; background white.")
    return fig


def image_grid(
    images: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    suptitle: str | None = None,
    panel_size: float = _PANEL_IN,
) -> Figure:
    """Pictures side by side (``{title: picture}`` or a list plus ``titles``).

    RGB, grayscale and RGBA uint8 arrays are accepted, and 2-D float arrays in 0..1 (shown as
    grey levels, e.g. ``Segmentation.probabilities``); RGBA is drawn over a grey checkerboard so
    the transparent parts show.
    """
    if isinstance(images, Mapping):
        if titles is not None:
            raise ValueError("give titles either as the mapping's keys or as titles=, not both")
        titles = [str(k) for k in images]
        pictures = list(images.values())
    else:
        pictures = list(images)
    if not pictures:
        raise ValueError("image_grid needs at least one picture")
    if titles is not None and len(titles) != len(pictures):
        raise ValueError(f"{len(titles)} titles for {len(pictures)} pictures")
    n = len(pictures)
    ncols = n if ncols is None else max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig, axes = _new_figure(nrows, ncols, panel=panel_size, extra_h=0.5 if suptitle else 0.2)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, pictures[i], titles[i] if titles is not None else None)
        else:
            ax.set_axis_off()
    return fig


def write_figures(
    image: ImageLike,
    out_dir: str | Path,
    segmenters: Segmenters,
    *,
    resolutions: Sequence[InternalResolution] = DEFAULT_RESOLUTIONS,
    amounts: Sequence[float] = DEFAULT_AMOUNTS,
    repeats: int = 3,
    internal_resolution: InternalResolution = None,
    threshold: float | None = None,
    settings: EffectSettings | None = None,
    dpi: int = 100,
) -> list[Path]:
    """Write the figures for ``image`` as PNG files into ``out_dir`` (created if needed).

    The internal-resolution and mask-blur figures use the first segmenter; the models figure is
    written only when there are two or more, and the body-parts figure for the first model with a
    body-part head (BodyPix), if any. File names are in :data:`FIGURE_FILES`.

    Returns:
        The paths written, in the order internal_resolution, mask_blur[, models][, body_parts].
    """
    rgb = load_image(image)
    items = _segmenter_items(segmenters)
    if not items:
        raise ValueError("write_figures needs at least one segmenter")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    first = _check_segmenter(items[0][1], "write_figures")
    seg = Pipeline(first, _mask_settings(settings, threshold, internal_resolution=internal_resolution)).segment(rgb)

    makers = [
        ("internal_resolution",
         lambda: internal_resolution_figure(rgb, first, resolutions, repeats, threshold=threshold, settings=settings)),
        ("mask_blur", lambda: mask_blur_figure(rgb, seg, amounts, settings=_mask_settings(settings, threshold))),
    ]
    if len(items) > 1:
        makers.append(
            ("models", lambda: models_figure(rgb, dict(items), internal_resolution=internal_resolution,
                                             threshold=threshold, repeats=repeats, settings=settings))
        )
    with_parts = [seg_ for _, seg_ in items if getattr(seg_, "has_parts", False)]
    if with_parts:
        makers.append(("body_parts", lambda: body_parts_figure(rgb, with_parts[0], internal_resolution=internal_resolution,
                                                                threshold=threshold, settings=settings)))
    paths = []
    for key, make in makers:
        fig = make()
        path = out / FIGURE_FILES[key]
        fig.savefig(path, dpi=dpi)
        fig.clear()  # our own figure: free its artists now (no pyplot, nothing global to close)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------
# quality figures: temporal smoothing, edge refinement, measured quality (bgkit.evaluate results;
# used by notebooks/03_quality.ipynb)

__all__ += ["flicker_figure", "quality_figure", "refinement_figure"]


def _result_items(results: Any) -> list[tuple[str, Any]]:
    """(label, EvaluationResult) pairs from a mapping, or a sequence of results (their labels)."""
    if isinstance(results, Mapping):
        items = [(str(k), v) for k, v in results.items()]
    elif isinstance(results, Sequence) and not isinstance(results, (str, bytes)):
        items = [(getattr(r, "label", "") or f"{getattr(r, 'model', 'result')} #{i + 1}", r)
                 for i, r in enumerate(results)]
    else:
        items = [(getattr(results, "label", "") or "result", results)]
    if not items:
        raise ValueError("no results to plot")
    for label, r in items:
        if not hasattr(r, "frames") or not hasattr(r, "mean_iou"):
            raise TypeError(f"{label}: expected a bgkit.evaluate.EvaluationResult; got {type(r).__name__}")
    return items


def flicker_figure(results: Any, title: str | None = None) -> Figure:
    """Flicker per frame for one or more evaluations of the same video (one line each).

    ``results``: ``{label: EvaluationResult}`` or a sequence of results (labelled by their
    ``label``), each from :func:`bgkit.evaluate.evaluate` on a video. The y axis is the percentage
    of pixels whose true mask stayed the same that switched person/background between two
    frames; the legend gives the mean.
    """
    items = _result_items(results)
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax = fig.subplots()
    for label, r in items:
        if r.kind != "video":
            raise ValueError(f"{label}: flicker needs a video (a folder of numbered frames); these are photos")
        y = 100.0 * np.asarray(r.flicker, dtype=float)
        ax.plot(np.arange(1, len(y) + 1), y, lw=1.4, label=f"{label}  (mean {100 * r.flicker_score:.2f} %)")
    ax.set_xlabel("frame")
    ax.set_ylabel("pixels that flipped (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "Flicker: mask changes between frames where the true mask did not change", fontsize=10)
    return fig


def quality_figure(results: Any, title: str | None = None) -> Figure:
    """Bars of mean IoU and boundary F-score (and flicker, for videos) per setting or model."""
    items = _result_items(results)
    video = any(r.kind == "video" for _, r in items)
    fig = Figure(figsize=(4.0 + 1.4 * len(items) * (2 if video else 1), 3.8), layout="constrained")
    axes = fig.subplots(1, 2 if video else 1, squeeze=False)[0]
    labels = [label for label, _ in items]
    x = np.arange(len(items))
    ax = axes[0]
    iou_v = [r.mean_iou for _, r in items]
    bf_v = [r.mean_boundary_f for _, r in items]
    b1 = ax.bar(x - 0.2, iou_v, 0.4, label="mean IoU")
    b2 = ax.bar(x + 0.2, bf_v, 0.4, label="boundary F")
    ax.bar_label(b1, fmt="%.3f", fontsize=7)
    ax.bar_label(b2, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, labels, fontsize=8, rotation=15)
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    ax.set_title("region and edge accuracy (higher is better)", fontsize=9)
    if video:
        ax = axes[1]
        fl = [100 * r.flicker_score if r.kind == "video" else 0.0 for _, r in items]
        b3 = ax.bar(x, fl, 0.5, color="tab:red")
        ax.bar_label(b3, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, labels, fontsize=8, rotation=15)
        ax.set_ylabel("%")
        ax.set_title("flicker (lower is steadier)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _difference_crops(a: np.ndarray, b: np.ndarray, count: int, size: int) -> list[tuple[int, int, int, int]]:
    """Up to ``count`` non-overlapping ``size`` windows (x, y, w, h) where masks a and b differ most
    (or, where they agree, along the edge of ``a``)."""
    h, w = a.shape
    size = int(max(8, min(size, h, w)))
    diff = (a.astype(bool) != b.astype(bool)).astype(np.float64)
    if not diff.any():
        x0, y0, s, _ = _edge_crop(a, size)
        return [(x0, y0, s, s)]
    c = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]  # window sums
    crops = []
    for _ in range(count):
        y0, x0 = np.unravel_index(int(np.argmax(sums)), sums.shape)
        if sums[y0, x0] <= 0:
            break
        crops.append((int(x0), int(y0), size, size))
        sums[max(0, y0 - size + 1): y0 + size, max(0, x0 - size + 1): x0 + size] = -1  # no overlaps
    return crops


def refinement_figure(
    image: ImageLike,
    raw: Segmentation,
    refined: Segmentation,
    truth: np.ndarray | None = None,
    crops: int = 3,
    size: int = 64,
    title: str | None = None,
) -> Figure:
    """Zoomed crops of the mask's outline without and with edge refinement.

    The crops are where the two masks differ most. Each row shows one crop twice: the outline
    of ``raw`` (red) and of ``refined`` (cyan) over the picture, pixels enlarged, plus the true
    outline (yellow, dashed) when ``truth`` is given.
    """
    rgb = load_image(image)
    for name, s in (("raw", raw), ("refined", refined)):
        if not isinstance(s, Segmentation):
            raise TypeError(f"{name} must be a Segmentation; got {type(s).__name__}")
        if (s.height, s.width) != rgb.shape[:2]:
            raise ValueError(f"{name} is {s.width}x{s.height} but the image is {rgb.shape[1]}x{rgb.shape[0]}")
    boxes = _difference_crops(raw.mask, refined.mask, max(1, int(crops)), size)
    fig, axes = _new_figure(len(boxes), 2, panel=3.2, extra_h=0.7)
    for row, (x0, y0, s, _) in enumerate(boxes):
        for col, (seg, colour, name) in enumerate(((raw, "red", "without refinement"),
                                                   (refined, "cyan", "with refinement"))):
            ax = axes[row, col]
            crop = (slice(y0, y0 + s), slice(x0, x0 + s))
            _show(ax, rgb[crop], f"{name}  (x={x0}, y={y0})", interpolation="nearest")
            ax.contour(seg.mask[crop].astype(float), levels=[0.5], colors=colour, linewidths=1.6)
            if truth is not None:
                t = np.asarray(truth)[crop].astype(float)
                if 0 < t.mean() < 1:
                    ax.contour(t, levels=[0.5], colors="yellow", linewidths=1.2, linestyles="dashed")
    _footer(fig, "red: raw outline; cyan: refined" + ("; yellow dashed: truth" if truth is not None else "")
            + f"\n{boxes[0][2]} px crops where the masks differ most")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ += ["edge_zoom_figure"]


def _outline_points(mask: np.ndarray, fractions: Sequence[float]) -> list[tuple[int, int]]:
    """Points (y, x) of the mask's outline, at the given fractions of the way down it (by row)."""
    m = mask.astype(bool)
    edge = np.zeros_like(m)
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    ys, xs = np.nonzero(edge)
    if not len(ys):
        h, w = m.shape
        return [(h // 2, w // 2)] * len(fractions)
    order = np.lexsort((xs, ys))
    return [(int(ys[order[min(len(order) - 1, int(f * len(order)))]]),
             int(xs[order[min(len(order) - 1, int(f * len(order)))]])) for f in fractions]


def edge_zoom_figure(
    image: ImageLike,
    pictures: Mapping[str, np.ndarray],
    mask: np.ndarray,
    *,
    at: Sequence[float] = (0.02, 0.55),
    size: int = 48,
    labels: Sequence[str] = ("top of the head", "further down"),
    title: str | None = None,
) -> Figure:
    """Zoomed crops of the person's edge in several pictures side by side (pixels enlarged, no smoothing).

    Args:
        image: the photo (for the size check).
        pictures: ``{label: picture}``, (H, W, 3|4) uint8 each (RGBA over a checkerboard), e.g. a
            cut-out with a hard mask and with the soft alpha.
        mask: the person mask the crops are centred on (its outline).
        at: where along the outline (fractions from the top) to centre the crops; the defaults
            land on the top of the head (hair) and the side of an upright person.
        size: crop side in pixels.
        labels: a name per crop row.

    Returns:
        A figure with ``len(at)`` rows and ``len(pictures)`` columns.
    """
    rgb = load_image(image)
    h, w = rgb.shape[:2]
    items = list(pictures.items())
    if not items:
        raise ValueError("edge_zoom_figure needs at least one picture")
    for label, p in items:
        if p.shape[:2] != (h, w):
            raise ValueError(f"picture {label!r} is {p.shape[1]}x{p.shape[0]} but the image is {w}x{h}")
    if np.asarray(mask).shape != (h, w):
        raise ValueError(f"mask {np.asarray(mask).shape} must be the image's size {(h, w)}")
    size = int(max(8, min(size, h, w)))
    fig, axes = _new_figure(len(at), len(items), panel=2.6, extra_h=0.8)
    for row, (cy, cx) in enumerate(_outline_points(np.asarray(mask), at)):
        y0, x0 = int(np.clip(cy - size // 2, 0, h - size)), int(np.clip(cx - size // 2, 0, w - size))
        for col, (label, p) in enumerate(items):
            _show(axes[row, col], p[y0:y0 + size, x0:x0 + size], label if row == 0 else None, interpolation="nearest")
        axes[row, 0].set_ylabel(labels[row] if row < len(labels) else f"({x0}, {y0})", fontsize=9)
    _footer(fig, f"{size} px crops of the person's edge, each pixel enlarged (no smoothing)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
