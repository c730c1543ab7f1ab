"""Measured quality: region IoU, boundary F-score and flicker, on photos or on a video's frames.

Metrics (all on binary masks, prediction vs ground truth of the same size):

* **IoU** (Jaccard index) ``|P & G| / |P | G|``; 1 when both are empty.
* **Boundary F** -- the DAVIS contour accuracy (Perazzi et al., "A Benchmark Dataset and
  Evaluation Methodology for Video Object Segmentation", CVPR 2016): boundary pixels of the
  two masks are matched when they lie within ``bound_th * diagonal`` pixels of each other
  (``ceil``; 0.008 of the diagonal = 8 px at 854x480); precision = matched predicted boundary
  pixels / predicted boundary pixels, recall likewise for the truth, F their harmonic mean.
  Same boundary map and disk tolerance as the DAVIS reference code.
* **Flicker** -- mean absolute change of the predicted mask between consecutive frames, over
  the pixels whose *true* mask did not change between those frames (so a moving person does
  not count, a boiling edge or a blinking background person does); 0 is perfectly steady.
  Reported as a mean over frame pairs, in percent of those pixels.

:func:`evaluate` runs a segmenter over a folder of images with a folder of masks (same stems,
masks 0 = background, > 127 = person). When the stems are numbers (``00000.jpg``, ...), the
folder is a **video**: frames are processed in order through one
:class:`bgkit.pipeline.FrameProcessor` (temporal smoothing applies) and the flicker is
measured; otherwise each photo is processed on its own.
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

from .imageio import load_image

__all__ = [
    "BOUND_TH",
    "EvaluationResult",
    "FrameScore",
    "boundary_f",
    "boundary_map",
    "evaluate",
    "evaluate_frames",
    "find_pairs",
    "flicker_score",
    "flicker_series",
    "iou",
    "is_numbered_sequence",
    "load_mask",
]

#: DAVIS boundary tolerance, as a fraction of the image diagonal.
BOUND_TH = 0.008

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# ----------------------------------------------------------------------------------------------
# metrics


def _binary(mask: Any, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) mask; got shape {m.shape}")
    return m if m.dtype == bool else m > 0


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = _binary(pred, "prediction"), _binary(gt, "ground truth")
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must have the same shape")
    return p, g


def iou(pred: Any, gt: Any) -> float:
    """Intersection over union of two binary masks (non-zero = person); 1.0 when both are empty."""
    p, g = _pair(pred, gt)
    union = np.count_nonzero(p | g)
    return float(np.count_nonzero(p & g) / union) if union else 1.0


def boundary_map(mask: Any) -> np.ndarray:
    """Boundary pixels of a binary mask (DAVIS ``seg2bmap`` at the mask's own size).

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour;
    the image border itself is not a boundary.
    """
    seg = _binary(mask, "mask")
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _dilate_disk(b: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation with a disk of ``radius`` (``x^2 + y^2 <= r^2``, like skimage's ``disk``).

    Decomposed into horizontal runs: for each row offset dy, a horizontal window of half-width
    ``floor(sqrt(r^2 - dy^2))`` (running sums), shifted by dy; computed only over the bounding
    box of the set pixels grown by ``radius``.
    """
    if radius <= 0 or not b.any():
        return b.copy()
    h, w = b.shape
    r = int(radius)
    rows_any, cols_any = np.flatnonzero(b.any(axis=1)), np.flatnonzero(b.any(axis=0))
    y0, y1 = max(0, rows_any[0] - r), min(h, rows_any[-1] + r + 1)
    x0, x1 = max(0, cols_any[0] - r), min(w, cols_any[-1] + r + 1)
    sub = b[y0:y1, x0:x1]
    sh, sw = sub.shape
    cs = np.zeros((sh, sw + 2 * r + 1), np.int32)  # cs[:, k] = number of set pixels left of padded column k
    np.cumsum(sub, axis=1, out=cs[:, r + 1: r + 1 + sw])
    cs[:, r + 1 + sw:] = cs[:, r + sw: r + 1 + sw]
    out = np.zeros((sh + 2 * r, sw), bool)
    runs: dict[int, np.ndarray] = {}
    for dy in range(-r, r + 1):
        half = math.isqrt(r * r - dy * dy)
        if half not in runs:
            runs[half] = cs[:, r + half + 1: r + half + 1 + sw] > cs[:, r - half: r - half + sw]
        out[r + dy: r + dy + sh] |= runs[half]
    result = np.zeros_like(b, dtype=bool)
    result[y0:y1, x0:x1] = out[r: r + sh]
    return result


def boundary_f(pred: Any, gt: Any, bound_th: float = BOUND_TH) -> tuple[float, float, float]:
    """DAVIS boundary measure: returns (F, precision, recall).

    ``bound_th`` >= 1 is a tolerance in pixels, below 1 a fraction of the image diagonal.
    Both masks without boundary: (1, 1, 1); only one without: F = 0.
    """
    p, g = _pair(pred, gt)
    h, w = p.shape
    bound_pix = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(h, w))
    bp, bg = boundary_map(p), boundary_map(g)
    n_p, n_g = int(np.count_nonzero(bp)), int(np.count_nonzero(bg))
    if n_p == 0 and n_g == 0:
        return 1.0, 1.0, 1.0
    if n_p == 0:
        return 0.0, 1.0, 0.0
    if n_g == 0:
        return 0.0, 0.0, 1.0
    r = int(round(bound_pix))
    p_dil, g_dil = _dilate_disk(bp, r), _dilate_disk(bg, r)
    precision = np.count_nonzero(bp & g_dil) / n_p
    recall = np.count_nonzero(bg & p_dil) / n_g
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return float(f), float(precision), float(recall)


def flicker_series(preds: Sequence[Any], gts: Sequence[Any]) -> np.ndarray:
    """Per frame pair ``(t-1, t)``: mean ``|pred_t - pred_{t-1}|`` over pixels where ``gt_t == gt_{t-1}``.

    Returns a float array of length ``len(preds) - 1`` (values 0..1; NaN for a pair whose
    true mask changed everywhere).
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground-truth masks")
    out = np.full(max(0, len(preds) - 1), np.nan)
    prev_p = prev_g = None
    for t, (pm, gm) in enumerate(zip(preds, gts)):
        p, g = _pair(pm, gm)
        if prev_p is not None:
            if p.shape != prev_p.shape:
                raise ValueError(f"frame {t} is {p.shape}, frame {t - 1} was {prev_p.shape}: a video's frames share a size")
            steady = g == prev_g
            n = np.count_nonzero(steady)
            if n:
                out[t - 1] = np.count_nonzero((p != prev_p) & steady) / n
        prev_p, prev_g = p, g
    return out


def flicker_score(preds: Sequence[Any], gts: Sequence[Any]) -> float:
    """Mean of :func:`flicker_series` (0..1); NaN for fewer than two frames."""
    s = flicker_series(preds, gts)
    s = s[np.isfinite(s)]
    return float(s.mean()) if s.size else float("nan")


# ----------------------------------------------------------------------------------------------
# data


def load_mask(path: str | Path) -> np.ndarray:
    """A ground-truth mask file as bool (H, W): > 127 is person (any mode; alpha ignored)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


def is_numbered_sequence(stems: Iterable[str]) -> bool:
    """True for at least two stems that are all numbers with one common prefix (``00000``, ``frame_0001``)."""
    matches = [_NUMBERED.match(s) for s in stems]
    return len(matches) >= 2 and all(matches) and len({m.group(1) for m in matches}) == 1  # type: ignore[union-attr]


_NUMBERED = re.compile(r"^(\D*)(\d+)$")


def _frame_number(stem: str) -> int | None:
    m = _NUMBERED.match(stem)
    return int(m.group(2)) if m else None


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
    """One row per result: label, frames, mean IoU, boundary F, flicker (%), ms per frame."""
    labels = [r.label or r.model for r in results]
    width = max([len("setting")] + [len(x) for x in labels])
    lines = [f"{'setting':<{width}}  {'frames':>6}  {'mean IoU':>8}  {'bound F':>7}  {'flicker %':>9}  {'ms/frame':>8}"]
    for lab, r in zip(labels, results):
        fl = f"{100 * r.flicker_score:9.3f}" if r.kind == "video" else f"{'-':>9}"
        lines.append(f"{lab:<{width}}  {len(r.frames):>6d}  {r.mean_iou:8.4f}  {r.mean_boundary_f:7.4f}  {fl}  "
                     f"{r.ms_per_frame:8.1f}")
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


def _settings_dict(settings: Any) -> dict:
    d = {}
    for k, v in vars(settings).items():
        if k == "background_image":
            continue
        d[k] = list(v) if isinstance(v, tuple) else v
    return d


def evaluate_frames(
    frames: Iterable[tuple[str, Any, np.ndarray]],
    segmenter: Any,
    settings: Any = None,
    video: bool = False,
    bound_th: float = BOUND_TH,
    label: str = "",
    progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Score ``segmenter`` on ``(name, image, true mask)`` triples.

    ``video=True``: the frames are one stream in order -- processed by one
    :class:`~bgkit.pipeline.FrameProcessor` (temporal smoothing as ``settings`` say) and the
    flicker is measured. Otherwise every image is segmented on its own
    (:func:`~bgkit.pipeline.segment_frame`, no smoothing). ``settings`` defaults to
    ``EffectSettings()``; only its segmentation fields matter.
    """
    from .pipeline import EffectSettings, FrameProcessor, segment_frame

    s = settings if settings is not None else EffectSettings()
    proc = FrameProcessor(segmenter, s) if video else None
    scores: list[FrameScore] = []
    preds: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    for name, image, gt in frames:
        rgb = load_image(image)
        gt = _binary(gt, f"mask {name}")
        if gt.shape != rgb.shape[:2]:
            raise ValueError(f"{name}: mask is {gt.shape[1]}x{gt.shape[0]} but image is {rgb.shape[1]}x{rgb.shape[0]}")
        t0 = time.perf_counter()
        seg = proc.segment(rgb) if proc is not None else segment_frame(rgb, segmenter, s)
        ms = (time.perf_counter() - t0) * 1000.0
        pred = seg.mask.astype(bool)
        f, pr, rc = boundary_f(pred, gt, bound_th)
        scores.append(FrameScore(name, iou(pred, gt), f, pr, rc, bool(gt.any()), ms))
        if video:
            preds.append(pred)
            gts.append(gt)
        if progress is not None:
            progress(1)
    flicker = flicker_series(preds, gts).tolist() if video else []
    return EvaluationResult(kind="video" if video else "images", model=str(getattr(segmenter, "name", "")),
                            settings=_settings_dict(s), frames=scores, flicker=flicker, label=label)


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
            measured); None: a video when every stem is a number.
        limit: use only the first ``limit`` pairs.
        progress: show a tqdm progress bar on stderr.
    """
    pairs = find_pairs(images, masks)
    if video is None:
        video = is_numbered_sequence(s for s, _, _ in pairs)
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
