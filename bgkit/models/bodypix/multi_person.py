"""Multi-person pose decoding and per-person masks, as BodyPix 2.2.1 (PoseNet-style) does it.

Poses (:func:`decode_multiple_poses`), on the model grid (``h x w`` cells, ``stride`` pixels each):

1. *Candidates*: every (cell, keypoint) whose score is >= ``score_threshold`` and that no cell in
   its 3 x 3 neighbourhood beats (strictly). They are pushed, in row / column / keypoint order,
   into BodyPix's binary max-heap (so equal scores come out in the same order as in JS).
2. *Roots*: candidates are popped best first. A root whose image position
   ``cell * stride + short_offset`` lies within ``nms_radius`` pixels of the same keypoint of an
   already accepted pose is skipped.
3. *Walking the skeleton*: from the root, the 16-edge tree (nose -> eyes -> ears, nose ->
   shoulders -> elbows -> wrists, shoulders -> hips -> knees -> ankles) is followed first
   towards the root of the tree with the backward displacements, then outwards with the forward
   ones. Each step reads the displacement at the source keypoint's nearest cell, then refines the
   target twice: ``cell(target) * stride + short_offset(target)``. Its score is the heatmap score
   at the final nearest cell.
4. *Pose score*: the mean over the 17 keypoints of the scores of those that are not within
   ``nms_radius`` of the same keypoint of an earlier pose.

Positions are then mapped to image pixels (:func:`scale_poses`). Arithmetic is float64 on the
float32 model outputs, with JS rounding (halves up), as in the library.

Per-person masks (:func:`decode_instance_masks`, BodyPix's CPU decoder): for every person pixel
``(x, y)`` of the image and each of the first five keypoints (nose, eyes, ears), the long-range
offsets are followed from the pixel: look up the offset at the model cell
``round(((pad + p + 1) * scale - 1) / stride)`` (``scale`` = internal size / padded image size),
add it, clamp from above to the image, and repeat ``refine_steps`` times. The pixel goes to the
pose whose keypoints (those scoring > 0.3) are closest on average in squared distance (first
pose on ties). As in JS, cell lookups use the flat index ``row * w + col`` (a column past the
edge reads the next row) and a flat index outside the grid gives NaN, which never matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "PART_NAMES",
    "POSE_CHAIN",
    "NUM_KEYPOINTS",
    "Pose",
    "decode_multiple_poses",
    "scale_poses",
    "decode_instance_masks",
    "decode_instance_part_masks",
]

#: PoseNet keypoint names, in channel order.
PART_NAMES: tuple[str, ...] = (
    "nose", "leftEye", "rightEye", "leftEar", "rightEar", "leftShoulder", "rightShoulder",
    "leftElbow", "rightElbow", "leftWrist", "rightWrist", "leftHip", "rightHip", "leftKnee",
    "rightKnee", "leftAnkle", "rightAnkle",
)  # fmt: skip
NUM_KEYPOINTS = len(PART_NAMES)
_ID = {n: i for i, n in enumerate(PART_NAMES)}
#: The skeleton tree as (parent, child) keypoint names; edge i = displacement channel i.
POSE_CHAIN: tuple[tuple[str, str], ...] = (
    ("nose", "leftEye"), ("leftEye", "leftEar"), ("nose", "rightEye"), ("rightEye", "rightEar"),
    ("nose", "leftShoulder"), ("leftShoulder", "leftElbow"), ("leftElbow", "leftWrist"),
    ("leftShoulder", "leftHip"), ("leftHip", "leftKnee"), ("leftKnee", "leftAnkle"),
    ("nose", "rightShoulder"), ("rightShoulder", "rightElbow"), ("rightElbow", "rightWrist"),
    ("rightShoulder", "rightHip"), ("rightHip", "rightKnee"), ("rightKnee", "rightAnkle"),
)  # fmt: skip
_PARENT = tuple(_ID[p] for p, _ in POSE_CHAIN)
_CHILD = tuple(_ID[c] for _, c in POSE_CHAIN)
_LOCAL_MAXIMUM_RADIUS = 1
_OFFSET_REFINE_STEPS = 2
_NUM_KPT_FOR_MATCHING = 5
_MIN_PART_SCORE_FOR_MATCHING = 0.3


class PaddingLike(Protocol):
    """Border (pixels) added around the image before resizing (``pipeline.Padding``)."""

    top: int
    bottom: int
    left: int
    right: int


@dataclass
class Pose:
    """A person's pose: ``keypoints`` (17, 3) float64 rows ``(x, y, score)`` in pixels / 0..1
    (order :data:`PART_NAMES`), ``score`` the pose score 0..1."""

    keypoints: np.ndarray
    score: float


def _js_round(x: float) -> int:
    r = np.floor(x)
    return int(r + 1 if x - r >= 0.5 else r)


def _js_round_arr(x: np.ndarray) -> np.ndarray:
    r = np.floor(x)
    return r + (x - r >= 0.5)


class _MaxHeap:
    """BodyPix's array max-heap (same swim/sink, so ties pop in the same order as in JS)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, int, int, int]] = []

    def _less(self, i: int, j: int) -> bool:
        return self.items[i][0] < self.items[j][0]

    def push(self, item: tuple[float, int, int, int]) -> None:
        q = self.items
        q.append(item)
        k = len(q) - 1
        while k > 0 and self._less(k // 2, k):
            q[k], q[k // 2] = q[k // 2], q[k]
            k //= 2

    def pop(self) -> tuple[float, int, int, int]:
        q = self.items
        top = q[0]
        q[0], q[-1] = q[-1], q[0]
        q.pop()
        n = len(q) - 1
        k = 0
        while 2 * k <= n:
            j = 2 * k
            if j < n and self._less(j, j + 1):
                j += 1
            if not self._less(k, j):
                break
            q[k], q[j] = q[j], q[k]
            k = j
        return top

    def __len__(self) -> int:
        return len(self.items)


def _candidates(scores: np.ndarray, score_threshold: float) -> _MaxHeap:
    t = torch.from_numpy(np.ascontiguousarray(scores.transpose(2, 0, 1)))[None]
    r = _LOCAL_MAXIMUM_RADIUS
    window_max = F.max_pool2d(F.pad(t, (r, r, r, r), value=-float("inf")), 2 * r + 1, stride=1)[0]
    ok = (t[0] >= window_max).numpy().transpose(1, 2, 0) & (scores.astype(np.float64) >= score_threshold)
    heap = _MaxHeap()
    for y, x, k in zip(*np.nonzero(ok)):
        heap.push((float(scores[y, x, k]), int(y), int(x), int(k)))
    return heap


def _near(poses: list[np.ndarray], sq_radius: float, x: float, y: float, k: int) -> bool:
    for kp in poses:
        dy = kp[k, 1] - y
        dx = kp[k, 0] - x
        if dy * dy + dx * dx <= sq_radius:
            return True
    return False


def decode_multiple_poses(
    scores: np.ndarray,
    offsets: np.ndarray,
    displacements_fwd: np.ndarray,
    displacements_bwd: np.ndarray,
    output_stride: int,
    max_detections: int = 10,
    score_threshold: float = 0.5,
    nms_radius: float = 20,
) -> list[Pose]:
    """BodyPix/PoseNet ``decodeMultiplePoses`` on one image's outputs (HWC float32 arrays).

    Parameters
    ----------
    scores : (h, w, 17) keypoint scores (sigmoid of the heatmaps), 0..1.
    offsets : (h, w, 34) short-range offsets in pixels (17 y, then 17 x).
    displacements_fwd, displacements_bwd : (h, w, 32) mid-range displacements (16 y, then 16 x).
    output_stride : pixels per cell.

    Returns
    -------
    list of :class:`Pose`, in detection order, with positions in the *network input* pixels
    (use :func:`scale_poses` for image pixels).
    """
    h, w, nk = scores.shape
    if nk != NUM_KEYPOINTS or offsets.shape != (h, w, 2 * nk):
        raise ValueError(f"expected scores (h, w, 17) and offsets (h, w, 34); got {scores.shape}, {offsets.shape}")
    ne = len(POSE_CHAIN)
    for d in (displacements_fwd, displacements_bwd):
        if d.shape != (h, w, 2 * ne):
            raise ValueError(f"displacements must be (h, w, {2 * ne}); got {d.shape}")
    stride = float(output_stride)
    sq_r = float(nms_radius) * float(nms_radius)
    heap = _candidates(scores, score_threshold)

    def cell(px: float, py: float) -> tuple[int, int]:
        cy = min(max(_js_round(py / stride), 0), h - 1)
        cx = min(max(_js_round(px / stride), 0), w - 1)
        return cy, cx

    def traverse(edge: int, src: np.ndarray, target: int, disp: np.ndarray) -> tuple[float, float, float]:
        cy, cx = cell(src[0], src[1])
        ty = src[1] + float(disp[cy, cx, edge])
        tx = src[0] + float(disp[cy, cx, ne + edge])
        for _ in range(_OFFSET_REFINE_STEPS):
            cy, cx = cell(tx, ty)
            ty = cy * stride + float(offsets[cy, cx, target])
            tx = cx * stride + float(offsets[cy, cx, target + nk])
        cy, cx = cell(tx, ty)
        return tx, ty, float(scores[cy, cx, target])

    accepted: list[np.ndarray] = []
    result: list[Pose] = []
    while len(result) < max_detections and len(heap):
        score, y, x, k = heap.pop()
        ry = y * stride + float(offsets[y, x, k])
        rx = x * stride + float(offsets[y, x, k + nk])
        if _near(accepted, sq_r, rx, ry, k):
            continue
        kps = np.full((nk, 3), np.nan)
        kps[k] = (rx, ry, score)
        known = np.zeros(nk, bool)
        known[k] = True
        for e in range(ne - 1, -1, -1):
            s, t = _CHILD[e], _PARENT[e]
            if known[s] and not known[t]:
                kps[t] = traverse(e, kps[s], t, displacements_bwd)
                known[t] = True
        for e in range(ne):
            s, t = _PARENT[e], _CHILD[e]
            if known[s] and not known[t]:
                kps[t] = traverse(e, kps[s], t, displacements_fwd)
                known[t] = True
        total = 0.0
        for j in range(nk):
            if not _near(accepted, sq_r, kps[j, 0], kps[j, 1], j):
                total += kps[j, 2]
        accepted.append(kps)
        result.append(Pose(kps, total / nk))
    return result


def scale_poses(
    poses: Sequence[Pose], image_hw: Sequence[int], internal_hw: Sequence[int], padding: PaddingLike
) -> list[Pose]:
    """Map poses from network-input pixels to image pixels (BodyPix ``scaleAndFlipPoses``, no flip).

    ``x' = x * (W + pad_left + pad_right) / w_in - pad_left`` (and the analogue for y).
    """
    H, W = image_hw
    ih, iw = internal_hw
    sy = (H + padding.top + padding.bottom) / ih
    sx = (W + padding.left + padding.right) / iw
    out = []
    for p in poses:
        kp = p.keypoints.copy()
        kp[:, 0] = kp[:, 0] * sx + (-padding.left)
        kp[:, 1] = kp[:, 1] * sy + (-padding.top)
        out.append(Pose(kp, p.score))
    return out


def _assign_instances(
    mask: np.ndarray,
    long_offsets: np.ndarray,
    poses: Sequence[Pose],
    output_stride: int,
    internal_hw: Sequence[int],
    padding: PaddingLike,
    refine_steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the person pixels and the pose index (-1 = none) each is assigned to."""
    H, W = mask.shape
    ih, iw = internal_hw
    lh, lw, lc = long_offsets.shape
    if lc != 2 * NUM_KEYPOINTS:
        raise ValueError(f"long_offsets must be (h, w, 34); got {long_offsets.shape}")
    flat_idx = np.flatnonzero(mask.reshape(-1) == 1)
    assign = np.full(flat_idx.shape, -1, np.int64)
    if not len(poses) or not len(flat_idx):
        return flat_idx, assign
    sx = iw / (padding.left + padding.right + W)
    sy = ih / (padding.top + padding.bottom + H)
    out_w = _js_round((iw - 1.0) / output_stride + 1.0)
    n_cells = lh * lw
    # flat table as JS indexes it, plus a NaN entry standing for reads outside the array
    table = np.append(long_offsets.astype(np.float64).reshape(-1), np.full(NUM_KEYPOINTS + 1, np.nan))
    sentinel = n_cells * lc
    kk = np.arange(_NUM_KPT_FOR_MATCHING, dtype=np.int64)[None, :]
    stride = float(output_stride)
    n = len(flat_idx)
    shape = (n, _NUM_KPT_FOR_MATCHING)
    cy = np.empty(shape)
    cx = np.empty(shape)
    tmp = np.empty(shape)
    cell = np.empty(shape, np.int64)

    def js_round_inplace(v: np.ndarray) -> None:
        np.floor(v, out=tmp)
        np.subtract(v, tmp, out=v)
        np.greater_equal(v, 0.5, out=v, casting="unsafe")
        np.add(v, tmp, out=v)

    def add_offsets(x: np.ndarray, y: np.ndarray) -> None:
        """x, y += long offset of keypoint k at the cell under (x, y), NaN outside the table."""
        np.add(y, padding.top + 1.0, out=cy)
        np.multiply(cy, sy, out=cy)
        np.subtract(cy, 1.0, out=cy)
        np.divide(cy, stride, out=cy)
        js_round_inplace(cy)
        np.add(x, padding.left + 1.0, out=cx)
        np.multiply(cx, sx, out=cx)
        np.subtract(cx, 1.0, out=cx)
        np.divide(cx, stride, out=cx)
        js_round_inplace(cx)
        np.multiply(cy, out_w, out=cy)
        np.add(cy, cx, out=cy)  # flat cell index (NaN propagates)
        with np.errstate(invalid="ignore"):
            ok = (cy >= 0) & (cy < n_cells)
        np.copyto(cy, -1.0, where=~ok)
        cell[...] = cy
        np.multiply(cell, lc, out=cell)
        np.add(cell, kk, out=cell)
        np.copyto(cell, sentinel, where=~ok)
        y += table[cell]
        x += table[cell + NUM_KEYPOINTS]

    y = np.repeat((flat_idx // W).astype(np.float64)[:, None], _NUM_KPT_FOR_MATCHING, axis=1)
    x = np.repeat((flat_idx % W).astype(np.float64)[:, None], _NUM_KPT_FOR_MATCHING, axis=1)
    add_offsets(x, y)
    for _ in range(refine_steps):
        np.minimum(y, H - 1.0, out=y)
        np.minimum(x, W - 1.0, out=x)
        add_offsets(x, y)
    best = np.full(flat_idx.shape, np.inf)
    for k, pose in enumerate(poses):
        kp = pose.keypoints[:_NUM_KPT_FOR_MATCHING]
        use = kp[:, 2] > _MIN_PART_SCORE_FOR_MATCHING
        if not use.any():
            continue  # distance = Infinity: never strictly better
        d = ((x[:, use] - kp[use, 0]) ** 2 + (y[:, use] - kp[use, 1]) ** 2).sum(axis=1) / use.sum()
        better = d < best
        best = np.where(better, d, best)
        assign[better] = k
    return flat_idx, assign


def decode_instance_masks(
    mask: np.ndarray,
    long_offsets: np.ndarray,
    poses: Sequence[Pose],
    output_stride: int,
    internal_hw: Sequence[int],
    padding: PaddingLike,
    refine_steps: int = 10,
) -> list[np.ndarray]:
    """Split a person mask into one mask per pose (BodyPix ``decodeMultipleMasksCPU``).

    Parameters
    ----------
    mask : (H, W) uint8 0/1 person mask at image size.
    long_offsets : (h, w, 34) float32 long-range offsets at model resolution (17 y, 17 x).
    poses : poses in image pixels (already filtered by score).
    output_stride, internal_hw, padding : geometry of the prediction.

    Returns
    -------
    list of (H, W) uint8 0/1 masks, one per pose (possibly empty).
    """
    idx, assign = _assign_instances(mask, long_offsets, poses, output_stride, internal_hw, padding, refine_steps)
    out = []
    for k in range(len(poses)):
        m = np.zeros(mask.size, np.uint8)
        m[idx[assign == k]] = 1
        out.append(m.reshape(mask.shape))
    return out


def decode_instance_part_masks(
    mask: np.ndarray,
    part_ids: np.ndarray,
    long_offsets: np.ndarray,
    poses: Sequence[Pose],
    output_stride: int,
    internal_hw: Sequence[int],
    padding: PaddingLike,
    refine_steps: int = 10,
) -> list[np.ndarray]:
    """Per-pose part maps (BodyPix ``decodeMultiplePartMasksCPU``): ``part_ids`` (H, W, 0..23, not
    masked) where the pixel belongs to the pose, -1 elsewhere. Returns (H, W) int8 arrays."""
    idx, assign = _assign_instances(mask, long_offsets, poses, output_stride, internal_hw, padding, refine_steps)
    flat = part_ids.reshape(-1)
    out = []
    for k in range(len(poses)):
        m = np.full(mask.size, -1, np.int8)
        sel = idx[assign == k]
        m[sel] = flat[sel]
        out.append(m.reshape(mask.shape))
    return out
