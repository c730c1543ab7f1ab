"""Quality metrics on masks: region IoU, DAVIS boundary F, flicker, and the edge-band alpha error.

All take (H, W) masks, prediction and ground truth of the same size (non-zero = person):

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
* **Edge-band alpha error** -- mean ``|alpha - truth|`` over the pixels within ``radius`` pixels
  of the true edge: how well a soft alpha (or a binary mask) fits where it matters.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["BOUND_TH", "EDGE_BAND_PX", "boundary_f", "boundary_map", "dilate_disk", "edge_band", "edge_band_alpha_error",
           "flicker_score", "flicker_series", "iou"]

#: DAVIS boundary tolerance, as a fraction of the image diagonal.
BOUND_TH = 0.008
#: Half-width in pixels of the band around the true edge where the alpha error is measured.
EDGE_BAND_PX = 8


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


def dilate_disk(b: np.ndarray, radius: int) -> np.ndarray:
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
    p_dil, g_dil = dilate_disk(bp, r), dilate_disk(bg, r)
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


def edge_band(gt: Any, radius: int = EDGE_BAND_PX) -> np.ndarray:
    """The pixels within ``radius`` pixels (a disk) of the true mask's boundary, as bool (H, W)."""
    return dilate_disk(boundary_map(gt), int(radius))


def edge_band_alpha_error(alpha: Any, gt: Any, radius: int = EDGE_BAND_PX) -> float:
    """Mean ``|alpha - gt|`` over :func:`edge_band` (alpha float 0..1, or a binary mask); NaN
    when the truth has no edge (no person, or all person)."""
    a = np.asarray(alpha, dtype=np.float32)
    g = _binary(gt, "ground truth")
    if a.shape != g.shape:
        raise ValueError(f"alpha {a.shape} and ground truth {g.shape} must have the same shape")
    band = edge_band(g, radius)
    if not band.any():
        return float("nan")
    return float(np.abs(a - g)[band].mean())
