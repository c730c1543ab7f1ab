"""Measured quality of a model and its settings, on photos or on a video's frames.

:func:`evaluate` runs a :class:`bgkit.Pipeline` over a folder of images with a folder of masks
(same stems, masks 0 = background, > 127 = person) and scores each with the metrics of
:mod:`bgkit.eval.metrics`: IoU, boundary F, the edge-band alpha error and -- for a video --
flicker. When the stems are frame numbers (``00000.jpg``, ...), the folder is a **video**:
frames go in order through one :class:`bgkit.Stream` (temporal smoothing applies) and the
flicker is measured; otherwise each photo is processed on its own, as a still.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from ..pipeline.settings import EffectSettings
from ..io.images import IMAGE_SUFFIXES, image_size, load_image
from ..ops.filters import gaussian_blur
from .metrics import BOUND_TH, _binary, boundary_f, edge_band_alpha_error, flicker_series, iou

__all__ = [
    "EvaluationResult",
    "looks_like_frames",
    "FrameScore",
    "evaluate",
    "evaluate_frames",
    "find_pairs",
    "format_summary",
    "is_video",
    "is_numbered_sequence",
    "load_mask",
]


# ----------------------------------------------------------------------------------------------
# data


def load_mask(path: str | Path) -> np.ndarray:
    """A ground-truth mask file as bool (H, W), True = person.

    Read as: a palette image (DAVIS style) -- index 0 is background, any other index an object;
    a grey image holding only 0 and 1 -- 1 is person; any other grey (or colour, converted to
    grey) image -- values above 127 are person (0/255 masks). Alpha is ignored. A file that is
    not an image raises :class:`bgkit.ImageError` naming it.
    """
    from ..io.images import ImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                return np.asarray(im) > 0
            if im.mode == "1":
                return np.asarray(im, dtype=bool)
            grey = np.asarray(im if im.mode in ("L", "I", "I;16", "F") else im.convert("L"))
    except (OSError, ValueError) as exc:
        raise ImageError(f"mask {path} could not be read as an image ({exc})") from None
    if grey.ndim != 2:
        raise ImageError(f"mask {path} is not a single-channel picture (shape {grey.shape})")
    top = float(grey.max()) if grey.size else 0.0
    if top <= 1:
        return grey > 0  # a 0/1 mask
    return grey > (32767 if top > 255 else 127)


def _stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


def is_numbered_sequence(stems: Iterable[str]) -> bool:
    """True for at least two stems that are all numbers with one common prefix (``00000``, ``IMG_0001``)."""
    matches = [_NUMBERED.match(s) for s in stems]
    return len(matches) >= 2 and all(matches) and len({m.group(1) for m in matches}) == 1  # type: ignore[union-attr]


def looks_like_frames(stems: Iterable[str]) -> bool:
    """True for the names of a video's frames: bare numbers (``00000``, as video tools write them) or
    ``frame``-prefixed numbers (``frame_0001``). Camera photo names (``IMG_0001``) are not frames."""
    stems = list(stems)
    return is_numbered_sequence(stems) and _FRAME_PREFIX.fullmatch(_NUMBERED.match(stems[0]).group(1)) is not None  # type: ignore[union-attr]


_NUMBERED = re.compile(r"^(\D*)(\d+)$")
_FRAME_PREFIX = re.compile(r"(frame[_-]?)?", re.IGNORECASE)


def _frame_number(stem: str) -> int | None:
    m = _NUMBERED.match(stem)
    return int(m.group(2)) if m else None


def is_video(pairs: Sequence[tuple[str, Path, Path]]) -> bool:
    """True when ``pairs`` (from :func:`find_pairs`) are a video's frames: frame-number names
    (:func:`looks_like_frames`) and one size."""
    return looks_like_frames(s for s, _, _ in pairs) and len({image_size(ip) for _, ip, _ in pairs}) == 1


def find_pairs(images: str | Path, masks: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, image file, mask file) for every image with a mask of the same stem, in order.

    Numbered stems sort by number, others by name. Raises when nothing pairs up.
    """
    imgs, msks = _stems(Path(images)), _stems(Path(masks))
    common = [s for s in imgs if s in msks]
    if not common:
        raise FileNotFoundError(f"no image in {images} has a mask of the same name in {masks}")
    if is_numbered_sequence(common):
        common.sort(key=lambda s: (_frame_number(s), s))
    else:
        common.sort()
    return [(s, imgs[s], msks[s]) for s in common]


# ----------------------------------------------------------------------------------------------
# results


@dataclass
class FrameScore:
    """Scores of one image or frame."""

    name: str
    iou: float
    boundary_f: float
    boundary_precision: float
    boundary_recall: float
    has_person: bool
    ms: float = 0.0
    #: mean |alpha - truth| within 8 px of the true edge, for the alpha bokeh, replace and cut-out
    #: composite with (the segmentation's soft alpha, blurred by ``edge_blur_amount``)
    alpha_error: float = float("nan")


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured (``to_dict`` / ``to_json`` for machines, ``table`` for people)."""

    kind: str  # "video" or "images"
    model: str
    settings: dict
    frames: list[FrameScore] = field(default_factory=list)
    flicker: list[float] = field(default_factory=list)  # per frame pair, empty for photos
    label: str = ""

    @property
    def mean_iou(self) -> float:
        return float(np.mean([f.iou for f in self.frames])) if self.frames else float("nan")

    @property
    def mean_iou_person(self) -> float:
        """Mean IoU over frames whose ground truth has a person."""
        v = [f.iou for f in self.frames if f.has_person]
        return float(np.mean(v)) if v else float("nan")

    @property
    def mean_boundary_f(self) -> float:
        return float(np.mean([f.boundary_f for f in self.frames])) if self.frames else float("nan")

    @property
    def mean_alpha_error(self) -> float:
        """Mean edge-band alpha error over the frames whose truth has an edge."""
        v = [f.alpha_error for f in self.frames if math.isfinite(f.alpha_error)]
        return float(np.mean(v)) if v else float("nan")

    @property
    def flicker_score(self) -> float:
        v = [x for x in self.flicker if math.isfinite(x)]
        return float(np.mean(v)) if v else float("nan")

    @property
    def ms_per_frame(self) -> float:
        return float(np.mean([f.ms for f in self.frames])) if self.frames else float("nan")

    def summary(self) -> dict:
        """The headline numbers."""
        out = {
            "label": self.label,
            "kind": self.kind,
            "model": self.model,
            "frames": len(self.frames),
            "mean_iou": self.mean_iou,
            "mean_iou_person": self.mean_iou_person,
            "boundary_f": self.mean_boundary_f,
            "alpha_error": self.mean_alpha_error,
            "flicker": self.flicker_score if self.kind == "video" else None,
            "ms_per_frame": self.ms_per_frame,
        }
        return out

    def to_dict(self) -> dict:
        return {**self.summary(), "settings": self.settings, "per_frame": [asdict(f) for f in self.frames],
                "flicker_per_pair": [None if not math.isfinite(x) else x for x in self.flicker]}

    def to_json(self, **kw: Any) -> str:
        return json.dumps(_jsonable(self.to_dict()), **kw)

    def table(self, per_frame: bool | None = None) -> str:
        """A small text table: per image (photos) or the summary (video; per frame when asked)."""
        per_frame = self.kind == "images" if per_frame is None else per_frame
        lines = []
        if per_frame:
            width = max([len("name")] + [len(f.name) for f in self.frames])
            lines.append(f"{'name':<{width}}  {'IoU':>6}  {'bound F':>7}  {'ms':>7}")
            for f in self.frames:
                lines.append(f"{f.name:<{width}}  {f.iou:6.3f}  {f.boundary_f:7.3f}  {f.ms:7.1f}")
            lines.append("")
        lines.append(format_summary([self]))
        return "\n".join(lines)


def format_summary(results: Sequence[EvaluationResult]) -> str:
    """One row per result: label, frames, mean IoU, boundary F, edge-band alpha error, flicker (%), ms per frame."""
    labels = [r.label or r.model for r in results]
    width = max([len("setting")] + [len(x) for x in labels])
    lines = [f"{'setting':<{width}}  {'frames':>6}  {'mean IoU':>8}  {'bound F':>7}  {'edge err':>8}  "
             f"{'flicker %':>9}  {'ms/frame':>8}"]
    for lab, r in zip(labels, results):
        fl = f"{100 * r.flicker_score:9.3f}" if r.kind == "video" else f"{'-':>9}"
        lines.append(f"{lab:<{width}}  {len(r.frames):>6d}  {r.mean_iou:8.4f}  {r.mean_boundary_f:7.4f}  "
                     f"{r.mean_alpha_error:8.4f}  {fl}  {r.ms_per_frame:8.1f}")
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return repr(x)


# ----------------------------------------------------------------------------------------------
# running a segmenter


def evaluate_frames(
    frames: Iterable[tuple[str, Any, np.ndarray]],
    segmenter: Any,
    settings: EffectSettings | None = None,
    video: bool = False,
    bound_th: float = BOUND_TH,
    label: str = "",
    progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Score ``segmenter`` (a :class:`bgkit.Segmenter`) with ``settings`` on ``(name, image, true
    mask)`` triples, through a :class:`bgkit.Pipeline`.

    ``video=True``: the frames are one stream in order -- processed by one :class:`bgkit.Stream`
    (temporal smoothing as ``settings`` say) and the flicker is measured. Otherwise every image is
    segmented on its own (a still). ``settings`` defaults to ``EffectSettings()``; only its
    segmentation and stream fields matter.
    """
    from ..pipeline import Pipeline

    s = settings if settings is not None else EffectSettings()
    pipe = Pipeline(segmenter, s)
    stream = pipe.stream() if video else None
    scores: list[FrameScore] = []
    preds: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    for name, image, gt in frames:
        rgb = load_image(image)
        gt = _binary(gt, f"mask {name}")
        if gt.shape != rgb.shape[:2]:
            raise ValueError(f"{name}: mask is {gt.shape[1]}x{gt.shape[0]} but image is {rgb.shape[1]}x{rgb.shape[0]}")
        t0 = time.perf_counter()
        seg = stream.segment(rgb) if stream is not None else pipe.segment(rgb)
        ms = (time.perf_counter() - t0) * 1000.0
        pred = seg.mask.astype(bool)
        f, pr, rc = boundary_f(pred, gt, bound_th)
        alpha = seg.alpha if s.edge_blur_amount == 0 else gaussian_blur(seg.alpha, s.edge_blur_amount)
        scores.append(FrameScore(name, iou(pred, gt), f, pr, rc, bool(gt.any()), ms, edge_band_alpha_error(alpha, gt)))
        if video:
            preds.append(pred)
            gts.append(gt)
        if progress is not None:
            progress(1)
    flicker = flicker_series(preds, gts).tolist() if video else []
    return EvaluationResult(kind="video" if video else "images", model=str(getattr(segmenter, "name", "")),
                            settings=s.as_dict(), frames=scores, flicker=flicker, label=label)


def evaluate(
    images: str | Path,
    masks: str | Path,
    segmenter: Any,
    settings: Any = None,
    video: bool | None = None,
    limit: int | None = None,
    bound_th: float = BOUND_TH,
    label: str = "",
    progress: bool = False,
) -> EvaluationResult:
    """Score ``segmenter`` on a folder of images against a folder of masks.

    Args:
        images, masks: folders; images and masks pair up by file stem.
        segmenter: a loaded :class:`bgkit.Segmenter` (or anything with ``segment_person``).
        settings: :class:`bgkit.EffectSettings` (threshold, internal resolution, edge
            refinement, temporal smoothing); default ``EffectSettings()``.
        video: treat the folder as one video (in frame order, smoothing applies, flicker is
            measured); None: a video when the names are frame numbers (``00000``, ``frame_0001``;
            not camera names like ``IMG_0001``) and the images share one size.
        limit: use only the first ``limit`` pairs.
        progress: show a tqdm progress bar on stderr.
    """
    pairs = find_pairs(images, masks)
    if video is None:
        video = is_video(pairs)
    elif video:
        sizes = {}
        for stem, ip, _ in pairs:
            sizes.setdefault(image_size(ip), stem)
        if len(sizes) > 1:
            (a, first), (b, other) = list(sizes.items())[:2]
            raise ValueError(f"{other} is {b[0]}x{b[1]} but {first} is {a[0]}x{a[1]}: a video's frames share one "
                             "size; evaluate them as separate photos instead (--photos, video=False)")
    if limit is not None:
        pairs = pairs[: max(0, int(limit))]
    triples = ((stem, ip, load_mask(mp)) for stem, ip, mp in pairs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pairs), unit="frame" if video else "image", desc=label or "evaluate", leave=False)
    try:
        return evaluate_frames(triples, segmenter, settings, video=video, bound_th=bound_th, label=label,
                               progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
