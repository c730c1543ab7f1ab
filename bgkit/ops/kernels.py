"""Fused CPU kernels for the full-size, per-pixel stages: the model's input, edge refinement, the
threshold and the soft alpha, blurs and blends.

On a CPU, torch runs a chain of per-pixel operations as one pass over the whole frame each (a
soft alpha is about a dozen, a blend five or six), and on a small machine those passes, not
the arithmetic, are what a frame costs. Where `numba <https://numba.pydata.org>`_ is installed
(the ``fast`` extra), these stages run as one parallel pass each (:mod:`._numba_kernels`),
with the same formulas in float32: probabilities and alphas agree with the torch definitions
to rounding, pictures to one grey level (the tests hold them to that). Tensors on other devices,
and machines without numba, use the torch definitions. ``BGKIT_NO_NUMBA=1`` turns the kernels
off. The kernels are compiled on first use (a few seconds) and cached on disk by numba.

Each function returns None where the kernels don't apply (so callers fall back to torch).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["apply_guided", "apply_matting", "available", "background_colour", "background_reduced_blur", "blend",
           "blend_upsampled_background", "blurred_two_colour_mask", "blurred_two_colour_mask_upsampled", "cutout",
           "guided_coefficients", "mask_block_means", "resize_antialias", "resize_taps", "separable_blur_valid",
           "soft_alpha", "threshold", "two_colour_mask", "weighted_reduce"]

OPT_OUT = "BGKIT_NO_NUMBA"


@functools.lru_cache(maxsize=None)
def _installed() -> bool:
    return importlib.util.find_spec("numba") is not None


def available() -> bool:
    """True where the kernels run: numba installed and ``BGKIT_NO_NUMBA`` unset."""
    return os.environ.get(OPT_OUT, "").strip() in ("", "0") and _installed()


@functools.lru_cache(maxsize=None)
def _k() -> Any:
    """The compiled kernels; None where numba has no thread-safe threading layer (OpenMP or TBB):
    frames may come from several threads at once (batches, the live camera)."""
    import numba

    if not os.environ.get("NUMBA_THREADING_LAYER"):
        numba.config.THREADING_LAYER = "threadsafe"
    from . import _numba_kernels

    try:  # compiles (or loads from numba's cache) and starts the threading layer
        out = np.empty((2, 2), np.bool_)
        _numba_kernels.threshold_into(np.zeros((2, 2), np.float32), np.float32(0.5), out)
    except Exception as exc:  # noqa: BLE001 - any failure: the torch definitions do the work
        log.warning("bgkit: the fused CPU kernels are off (%s: %s); torch does their work", type(exc).__name__, exc)
        return None
    log.debug("bgkit: fused CPU kernels (numba, %s threading layer) loaded", numba.threading_layer())
    return _numba_kernels


def _cpu(*tensors: torch.Tensor) -> bool:
    return available() and all(t.device.type == "cpu" for t in tensors) and _k() is not None


def _np(t: torch.Tensor) -> np.ndarray:
    """A C-contiguous numpy view (a copy only where the tensor is not contiguous)."""
    return t.detach().contiguous().numpy()


@functools.lru_cache(maxsize=64)
def _columns(n_full: int, n_low: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's bilinear (align_corners=False) samples and weights along one axis, in float32."""
    scale = np.float32(n_low) / np.float32(n_full)
    src = np.maximum(scale * (np.arange(n_full, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5),
                     np.float32(0.0)).astype(np.float32)
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, n_low - 1)
    return i0, i1, (src - i0).astype(np.float32)


def guided_coefficients(low_guide: torch.Tensor, low_p: torch.Tensor, subsample: int, r: int, eps: float
                        ) -> torch.Tensor | None:
    """:func:`bgkit.ops.refine.guided_coefficients` of the (1, 3, h, w) colour guide and the (1, 1,
    h, w) input, first reduced to 2x2 block means where ``subsample`` is 2 (h, w even): the
    coefficient stage of :func:`bgkit.ops.refine.refine_t` in one call, (1, 4, h / s, w / s)."""
    if (not _cpu(low_guide, low_p) or low_guide.dim() != 4 or tuple(low_guide.shape[:2]) != (1, 3)
            or tuple(low_p.shape) != (1, 1, *low_guide.shape[2:]) or subsample not in (1, 2)):
        return None
    h, w = low_guide.shape[2:]
    if subsample == 2 and (h % 2 or w % 2):
        return None
    ab = np.empty((4, h // subsample, w // subsample), np.float32)
    _k().guided_coefficients_rgb(_np(low_guide[0].float()), _np(low_p[0, 0].float()), int(subsample), int(r),
                                 np.float32(eps), ab)
    return torch.from_numpy(ab).unsqueeze(0)


def apply_guided(ab: torch.Tensor, frame: torch.Tensor) -> torch.Tensor | None:
    """``clamp(b + sum_k a_k I_k, 0, 1)``, (H, W) float32: the guided filter's coefficients ``ab``
    (1, 4, h, w) upsampled bilinearly to the (H, W, 3) uint8 ``frame`` and applied to it
    (``I`` = frame / 255); :func:`bgkit.ops.refine.apply_coefficients` in one pass."""
    if not _cpu(ab, frame) or frame.dtype != torch.uint8 or ab.shape[:2] != (1, 4):
        return None
    h, w = frame.shape[:2]
    hl, wl = ab.shape[-2:]
    y0, y1, wy = _columns(h, hl)
    x0, x1, wx = _columns(w, wl)
    q = np.empty((h, w), np.float32)
    _k().apply_guided(_np(ab[0].float()), y0, y1, wy, x0, x1, wx, _np(frame), q)
    return torch.from_numpy(q)


def apply_matting(coef: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """RVM's guided-filter coefficients ``coef`` (1, 8, h, w) upsampled bilinearly to the (H, W, 3)
    uint8 ``frame`` and applied to it: ``(fgr, pha)``, (H, W, 3) RGB and (H, W), float32 0..1;
    :func:`bgkit.models.rvm.net.apply_coefficients` in one pass."""
    if not _cpu(coef, frame) or frame.dtype != torch.uint8 or coef.dim() != 4 or coef.shape[:2] != (1, 8):
        return None
    h, w = frame.shape[:2]
    hl, wl = coef.shape[-2:]
    y0, y1, wy = _columns(h, hl)
    x0, x1, wx = _columns(w, wl)
    fgr, pha = np.empty((h, w, 3), np.float32), np.empty((h, w), np.float32)
    _k().apply_matting(_np(coef[0].float()), y0, y1, wy, x0, x1, wx, _np(frame), fgr, pha)
    return torch.from_numpy(fgr), torch.from_numpy(pha)


def resize_taps(frame: torch.Tensor, rows: tuple[np.ndarray, ...], cols: tuple[np.ndarray, ...]) -> torch.Tensor | None:
    """The (H, W, 3) uint8 ``frame`` / 255 resized bilinearly with the given taps (each axis: source
    indices ``i1``, ``i2`` (int64), the weights of ``i2`` and of ``i1`` (float32)), as (1, 3, h, w)
    float32: bit for bit :func:`bgkit.models.rvm.net.downsample` of the float frame."""
    if not _cpu(frame) or frame.dtype != torch.uint8 or frame.dim() != 3 or frame.shape[2] != 3:
        return None
    out = np.empty((3, len(rows[0]), len(cols[0])), np.float32)
    _k().resize_taps(_np(frame), *rows, *cols, out)
    return torch.from_numpy(out).unsqueeze(0)


@functools.lru_cache(maxsize=64)
def antialias_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's antialiased bilinear resampling (``F.interpolate(..., mode="bilinear",
    align_corners=False, antialias=True)``) along one axis as taps: (first source index (n_out,)
    int64, weights (n_out, k) float32 from that index on, how many of them are non-zero (n_out,)
    int64). The triangle filter is widened by the scale when shrinking, and each window is cut at
    the edges and renormalised."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    inv = 1.0 / support
    k = min(2 * int(math.ceil(support)) + 1, n_in)
    first = np.zeros(n_out, np.int64)
    count = np.zeros(n_out, np.int64)
    weights = np.zeros((n_out, k), np.float32)
    for i in range(n_out):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        taps = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - centre + 0.5) * inv))
        taps /= taps.sum()
        nonzero = np.flatnonzero(taps)
        a, b = int(nonzero[0]), int(nonzero[-1]) + 1  # the triangle's zero ends: no work
        first[i], count[i] = lo + a, b - a
        weights[i, :b - a] = taps[a:b]
    return first, weights, count


def resize_antialias(frame: torch.Tensor, size: tuple[int, int],
                     normalise: tuple[tuple[float, ...], tuple[float, ...]] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (H, W, 3) uint8 ``frame`` / 255 resized to ``size`` (h, w) as (1, 3, h, w) float32:
    ``F.interpolate`` of the 0..1 float frame, bilinear, antialiased, to float rounding, straight
    from the uint8 frame. (torch's uint8 resampling rounds to whole grey levels after each axis:
    up to one level off. From the same float result, a CPU and a GPU now feed the model the same input.)
    Returns (that, the same normalised as ``(x - mean) / std`` with ``normalise`` = (mean, std),
    per RGB channel, made in the same pass; the first again where ``normalise`` is None)."""
    if not _cpu(frame) or frame.dtype != torch.uint8 or frame.dim() != 3 or frame.shape[2] != 3:
        return None
    h, w = (int(n) for n in size)
    out = np.empty((3, h, w), np.float32)
    norm = out if normalise is None else np.empty((3, h, w), np.float32)
    mean, std = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) if normalise is None else normalise
    _k().resize_weighted(_np(frame), *antialias_taps(int(frame.shape[0]), h), *antialias_taps(int(frame.shape[1]), w),
                         np.asarray(mean, np.float32), np.asarray(std, np.float32), normalise is not None, out, norm)
    low = torch.from_numpy(out).unsqueeze(0)
    return low, (low if normalise is None else torch.from_numpy(norm).unsqueeze(0))


def threshold(p: torch.Tensor, t: float) -> torch.Tensor | None:
    """``p > t`` of an (H, W) probability as a bool tensor, in one parallel pass (about 4x faster
    than torch's comparison at 640x480, which goes through a float broadcast)."""
    if not _cpu(p) or p.dim() != 2:
        return None
    on = np.empty(tuple(p.shape), np.bool_)
    _k().threshold_into(_np(p.float()), np.float32(t), on)
    return torch.from_numpy(on)


def soft_alpha(p: torch.Tensor, threshold: float, softness: float, mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mask, alpha) of the (H, W) probability ``p``: ``mask = p > threshold`` (or the given
    bool mask) and :func:`bgkit.soft_alpha`'s alpha, in two passes."""
    if not _cpu(p) or p.dim() != 2 or softness <= 0 or min(p.shape) < 2:
        return None
    pn = _np(p.float())
    t = np.float32(threshold)
    if mask is None:
        on = np.empty(pn.shape, np.bool_)
        _k().threshold_into(pn, t, on)
    else:
        on = _np(mask.bool())
    alpha = np.empty_like(pn)
    _k().soft_alpha(pn, on, t, np.float32(softness), int(math.ceil(softness / 2.0)), alpha)
    return torch.from_numpy(on), torch.from_numpy(alpha)


def _out(h: int, w: int, c: int = 3) -> np.ndarray:
    return np.empty((h, w, c), np.uint8)


def _picture(x: torch.Tensor) -> np.ndarray | None:
    if x.dim() != 3 or x.shape[2] != 3 or x.dtype not in (torch.uint8, torch.float32):
        return None
    return _np(x)


def blend(fg: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor, flip: bool = False,
          fg_scale: float = 1.0) -> torch.Tensor | None:
    """``round(lerp(bg, fg * fg_scale, alpha))`` as :func:`bgkit.ops.compositing.blend_t`, mirrored
    where ``flip``: ``fg`` (H, W, 3) uint8 or float, ``bg`` the same or an RGB colour (3,),
    ``alpha`` (H, W) float 0..1. Returns (H, W, 3) uint8."""
    if not _cpu(fg, alpha, bg) or alpha.dim() != 2:
        return None
    f = _picture(fg)
    colour = bg.numel() == 3 and bg.dim() in (1, 3)  # an RGB colour, (3,) or (1, 1, 3)
    b = _np(bg.float().reshape(3)) if colour else _picture(bg)
    if f is None or b is None or f.shape[:2] != tuple(alpha.shape) or (not colour and b.shape != f.shape):
        return None
    out = _out(*alpha.shape)
    (_k().blend_colour if colour else _k().blend)(f, np.float32(fg_scale), b, _np(alpha.float()), bool(flip), out)
    return torch.from_numpy(out)


def background_reduced_blur(image: torch.Tensor, alpha: torch.Tensor, f: int, pad: int, taps: torch.Tensor
                            ) -> tuple[torch.Tensor, np.ndarray] | None:
    """A bokeh's background at 1/f resolution in one pass over the (H, W, 3) uint8 ``image``: the
    weights ``1 - alpha`` ((H, W) float) and the weighted picture reduced to f x f block means with
    ``pad`` blocks of edge padding, then blurred with ``taps`` (2r + 1,) (valid part): ((n, m, 4)
    float32 = (blur(x w), blur(w)), their sums (4,) float64). ``bgkit.ops.filters._reduced_blur_low``
    of the picture weighted by ``1 - alpha``, without the full-size weights or the reduced copy."""
    if not _cpu(image, alpha, taps) or image.dtype != torch.uint8 or alpha.dim() != 2:
        return None
    import numba

    h, w = alpha.shape
    k = taps.numel()
    n, m = -(-h // f) + 2 * pad - (k - 1), -(-w // f) + 2 * pad - (k - 1)
    if n < 1 or m < 1:
        return None
    out = np.empty((n, m, 4), np.float32)
    sums = np.empty((max(1, min(numba.get_num_threads(), n)), 4), np.float64)
    _k().background_reduced_blur(_np(image), _np(alpha.float()), int(f), int(pad), _np(taps.float()), out, sums)
    return torch.from_numpy(out), sums.sum(axis=0)


def blend_upsampled_background(fg: torch.Tensor, low: torch.Tensor, fallback: np.ndarray, eps: float, f: int,
                               start: int, alpha: torch.Tensor, flip: bool = False) -> torch.Tensor | None:
    """:func:`blend` of the (H, W, 3) uint8 ``fg`` over a bokeh's background given at 1/f resolution
    as ``low`` (n, m, 4) = (blur(x w), blur(w)) and normalised on the fly to
    ``(num + eps fallback) / (den + eps)`` (``fallback`` (3,): the background's mean colour), then
    upsampled bilinearly (``bgkit.ops.filters._upsample``'s samples, phase ``start``)."""
    if not _cpu(fg, low, alpha) or fg.dtype != torch.uint8 or low.dim() != 3 or low.shape[2] != 4:
        return None
    e = np.float32(eps)
    fb = (e * np.asarray(fallback, np.float32)).astype(np.float32)
    out = _out(*alpha.shape)
    _k().blend_upsampled_background(_np(fg), _np(low.float()), fb, e, int(f), int(start), _np(alpha.float()),
                                    bool(flip), out)
    return torch.from_numpy(out)


def weighted_reduce(image: torch.Tensor, weight: torch.Tensor, f: int, pad: int) -> torch.Tensor | None:
    """(ceil(H / f) + 2 pad, ceil(W / f) + 2 pad, 4) float32: means over f x f blocks of
    (image * weight, weight) with the edges replicated, the full-size pass of a bokeh's masked
    blur (``image`` (H, W, 3) uint8, ``weight`` (H, W)); ``bgkit.ops.filters._reduce`` of them."""
    if not _cpu(image, weight) or image.dtype != torch.uint8:
        return None
    h, w = weight.shape
    out = np.empty((-(-h // f) + 2 * pad, -(-w // f) + 2 * pad, 4), np.float32)
    _k().weighted_reduce(_np(image), _np(weight.float()), int(f), int(pad), out)
    return torch.from_numpy(out)


def separable_blur_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor | None:
    """The valid part of the separable blur of (n, m, C) float ``x`` with ``taps`` (2r + 1,):
    (n - 2r, m - 2r, C), as ``bgkit.ops.filters._sep_blur(x, taps, r, pad=False)``."""
    if not _cpu(x) or x.dim() != 3:
        return None
    r = taps.numel() // 2
    n, m, c = x.shape
    out = np.empty((n - 2 * r, m - 2 * r, c), np.float32)
    _k().separable_blur_valid(_np(x.float()), _np(taps.float()), out)
    return torch.from_numpy(out)


def background_colour(low: torch.Tensor, eps: float) -> torch.Tensor | None:
    """A bokeh's blurred background from ``low`` (n, m, 4) float32 = (blur(x w), blur(w)):
    ``(num + eps * fallback) / (den + eps)``, fallback the mean colour ``sum(num) / max(sum(den),
    eps)``; (n, m, 3) float32. ``bgkit.ops.filters._background_low``'s normalisation in two passes."""
    if not _cpu(low) or low.dim() != 3 or low.shape[2] != 4:
        return None
    out = np.empty((*low.shape[:2], 3), np.float32)
    _k().background_colour(_np(low.float()), np.float32(eps), out)
    return torch.from_numpy(out)


def two_colour_mask(image: torch.Tensor, on: torch.Tensor, colours: np.ndarray, weights: np.ndarray,
                    flip: bool = False) -> torch.Tensor | None:
    """A binary mask in two colours over ``image``: ``colours`` (2, 3) float32 (person,
    background), ``weights`` (2,) float32, each colour's alpha times the opacity."""
    if not _cpu(image, on) or image.dtype != torch.uint8:
        return None
    out = _out(*on.shape)
    _k().two_colour_mask(_np(image), _np(on.bool()), colours, weights, bool(flip), out)
    return torch.from_numpy(out)


def blurred_two_colour_mask(image: torch.Tensor, on: torch.Tensor, coverage: torch.Tensor, colours: np.ndarray,
                            alphas: np.ndarray, opacity: float, eps: float, flip: bool = False) -> torch.Tensor | None:
    """The two-colour mask blurred: ``coverage`` (H, W) the blurred person, ``alphas`` (2,) the
    colours' alphas (0..1); see ``_numba_kernels.blurred_two_colour_mask``."""
    if not _cpu(image, on, coverage) or image.dtype != torch.uint8:
        return None
    out = _out(*on.shape)
    _k().blurred_two_colour_mask(_np(image), _np(on.bool()), _np(coverage.float()), colours, alphas,
                                 np.float32(opacity), np.float32(eps), bool(flip), out)
    return torch.from_numpy(out)


def mask_block_means(on: torch.Tensor, f: int, pad: int) -> torch.Tensor | None:
    """(ceil(H / f) + 2 pad, ceil(W / f) + 2 pad, 1) float32: means over f x f blocks of the bool
    mask ``on`` (H, W) as 0/1, the edges replicated; ``bgkit.ops.filters._reduce`` of
    ``on.float()[..., None]`` without the full-size float copy."""
    if not _cpu(on) or on.dim() != 2 or on.dtype != torch.bool:
        return None
    h, w = on.shape
    out = np.empty((-(-h // f) + 2 * pad, -(-w // f) + 2 * pad), np.float32)
    _k().mask_block_means(_np(on), int(f), int(pad), out)
    return torch.from_numpy(out).unsqueeze(-1)


def blurred_two_colour_mask_upsampled(image: torch.Tensor, on: torch.Tensor, low: torch.Tensor, f: int, start: int,
                                      colours: np.ndarray, alphas: np.ndarray, opacity: float, eps: float,
                                      flip: bool = False) -> torch.Tensor | None:
    """:func:`blurred_two_colour_mask` with the coverage at 1/f resolution (``low`` (n, m) and the
    phase ``start``, as ``bgkit.ops.filters._upsample`` takes them), upsampled on the fly."""
    if not _cpu(image, on, low) or image.dtype != torch.uint8 or low.dim() != 2:
        return None
    out = _out(*on.shape)
    _k().blurred_two_colour_mask_upsampled(_np(image), _np(on.bool()), _np(low.float()), int(f), int(start), colours,
                                           alphas, np.float32(opacity), np.float32(eps), bool(flip), out)
    return torch.from_numpy(out)


def cutout(fg: torch.Tensor, alpha: torch.Tensor, flip: bool = False, fg_scale: float = 1.0) -> torch.Tensor | None:
    """RGBA (H, W, 4) uint8: ``round(fg * fg_scale)`` with alpha ``round(255 alpha)``."""
    if not _cpu(fg, alpha):
        return None
    f = _picture(fg)
    if f is None:
        return None
    out = _out(*alpha.shape, 4)
    _k().cutout(f, np.float32(fg_scale), _np(alpha.float()), bool(flip), out)
    return torch.from_numpy(out)
