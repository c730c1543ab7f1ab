"""Only the main person: pick one person out of a mask ("only me" when someone walks behind you).

People are told apart by the model's own instance split where it has one (BodyPix's multi-person
decoding gives one mask per person, even where two people touch), else by the connected
components of the mask. :func:`main_person` keeps the largest person, or the one nearest the
centre of the picture; :func:`keep_only` applies that to a mask and a soft alpha.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CHOICES", "connected_components", "keep_only", "main_person"]

#: The ``people`` setting: every person, the largest, or the one nearest the centre.
CHOICES = ("all", "largest", "centre")
#: Components are found on a copy of the mask at most this many pixels on its long side.
LABEL_SIDE = 256
#: For "centre", a part of the mask counts as a person only if its area is at least this fraction
#: of the largest one's (so a speckle near the centre never wins over the person beside it).
MIN_PERSON_FRACTION = 0.1


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of an (H, W) bool mask: (int32 labels, 0 = background, 1..n; n).

    Run-length based: the runs of each row are united with the overlapping runs of the row above
    (union-find on runs), so the Python work grows with the number of runs, not of pixels.
    """
    m = np.asarray(mask, bool)
    h, w = m.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = m
    d = np.diff(padded, axis=1)
    rows_s, cols_s = np.nonzero(d == 1)
    _, cols_e = np.nonzero(d == -1)  # same order: row by row, left to right
    n_runs = len(rows_s)
    parent = np.arange(n_runs)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_start = np.searchsorted(rows_s, np.arange(h + 1))
    for y in range(1, h):
        a0, a1 = row_start[y - 1], row_start[y]
        b0, b1 = row_start[y], row_start[y + 1]
        i, j = a0, b0
        while i < a1 and j < b1:  # overlapping runs of consecutive rows (4-connectivity)
            if cols_s[i] < cols_e[j] and cols_s[j] < cols_e[i]:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
            if cols_e[i] < cols_e[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(n_runs)], dtype=np.int64)
    _, labels_of_runs = np.unique(roots, return_inverse=True)
    labels = np.zeros((h, w), np.int32)
    for r in range(n_runs):
        labels[rows_s[r], cols_s[r]:cols_e[r]] = labels_of_runs[r] + 1
    return labels, int(labels_of_runs.max() + 1) if n_runs else 0


def _pick(masks: Sequence[np.ndarray], how: str) -> int:
    """Index of the main person among ``masks`` (bool, same size)."""
    areas = [int(m.sum()) for m in masks]
    if how == "largest":
        return int(np.argmax(areas))
    big_enough = [a >= MIN_PERSON_FRACTION * max(areas) and a > 0 for a in areas]
    h, w = masks[0].shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0

    def distance(m: np.ndarray) -> float:
        ys, xs = np.nonzero(m)
        return float(np.hypot(ys.mean() - cy, xs.mean() - cx)) if len(ys) else float("inf")

    return int(np.argmin([distance(m) if ok else float("inf") for m, ok in zip(masks, big_enough)]))


def main_person(mask: torch.Tensor, how: str, instances: Sequence[np.ndarray] | None = None) -> torch.Tensor:
    """The main person of an (H, W) bool mask tensor, as an (H, W) bool tensor on its device.

    ``how``: "largest" or "centre" (the person whose centre of mass is nearest the picture's
    centre, among those at least :data:`MIN_PERSON_FRACTION` the size of the largest). ``instances``: per-person (H, W) masks from the model (BodyPix), else the mask's
    connected components (found on a copy at most :data:`LABEL_SIDE` pixels long) are the people.
    An empty mask stays empty.
    """
    if how not in CHOICES[1:]:
        raise ValueError(f"how must be 'largest' or 'centre'; got {how!r}")
    h, w = mask.shape[-2:]
    if instances:
        people = [np.asarray(m, bool) for m in instances]
        chosen = torch.from_numpy(people[_pick(people, how)]).to(mask.device)
        return chosen & mask
    scale = min(1.0, LABEL_SIDE / max(h, w))
    small = mask[None, None].float()
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small = F.adaptive_max_pool2d(small, size)
    labels, n = connected_components(small[0, 0].cpu().numpy() > 0)
    if n <= 1:
        return mask.clone()
    people = [labels == k for k in range(1, n + 1)]
    keep = torch.from_numpy(people[_pick(people, how)]).to(mask.device)
    if scale < 1.0:
        keep = F.interpolate(keep[None, None].float(), size=(h, w), mode="nearest")[0, 0] > 0
    return keep & mask


def keep_only(person: torch.Tensor, mask: torch.Tensor, alpha: torch.Tensor, softness: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, alpha) limited to ``person`` (bool, from :func:`main_person`): the mask outside it is
    cleared, and the alpha too, except within the soft edge (``softness`` px) around it."""
    r = max(1, int(np.ceil(softness)))
    near = F.max_pool2d(person[None, None].float(), 2 * r + 1, stride=1, padding=r)[0, 0] > 0
    return mask & person, torch.where(near, alpha, torch.zeros_like(alpha))
