"""BodyPix's body-part drawing API in numpy: ``toColoredPartMask``, ``drawPixelatedMask``, ``blurBodyPart``.

The part ids come from a model with a body-part head (BodyPix:
:meth:`bgkit.models.bodypix.BodyPixSegmenter.segment_person_parts`).

Inputs and outputs
    Images are (H, W, 3) uint8 RGB arrays; results are new C-contiguous uint8 arrays (RGB, or
    RGBA for :func:`to_colored_part_mask`). A *part segmentation* is an (H, W) integer array of
    part ids (-1 = no person, 0..23 = :data:`PART_CHANNELS`), or a sequence of such arrays (one
    per person, as ``segmentMultiPersonParts`` returns; anything with a ``part_ids`` attribute
    is accepted too). Sizes must agree, else ``ValueError`` naming both (as width x height).

Blur
    BodyPix draws through the canvas filter ``blur(Npx)``: a Gaussian of standard deviation N
    pixels. Here it is the sampled Gaussian on ``|x| <= ceil(3 N)``, normalised, applied
    separably, with pixels outside the image taken equal to the nearest edge pixel (a browser
    treats the outside as transparent, which darkens borders); :func:`bgkit.ops.filters.gaussian_blur`
    does it. 0 means no blur; amounts must lie in [0, 20].

flip_horizontal
    Mirrors the whole output, as BodyPix's canvas transform does:
    ``f(..., flip_horizontal=True) == np.fliplr(f(..., flip_horizontal=False))``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .compositing import MAX_BLUR
from .filters import gaussian_blur

__all__ = [
    "PART_CHANNELS",
    "RAINBOW_PART_COLORS",
    "FACE_PART_IDS",
    "to_colored_part_mask",
    "draw_pixelated_mask",
    "blur_body_part",
    "body_part_mask_alpha",
]

#: The 24 body parts, in part-id order.
PART_CHANNELS: tuple[str, ...] = (
    "left_face", "right_face", "left_upper_arm_front", "left_upper_arm_back",
    "right_upper_arm_front", "right_upper_arm_back", "left_lower_arm_front",
    "left_lower_arm_back", "right_lower_arm_front", "right_lower_arm_back", "left_hand",
    "right_hand", "torso_front", "torso_back", "left_upper_leg_front", "left_upper_leg_back",
    "right_upper_leg_front", "right_upper_leg_back", "left_lower_leg_front",
    "left_lower_leg_back", "right_lower_leg_front", "right_lower_leg_back", "left_feet",
    "right_feet",
)  # fmt: skip

#: BodyPix's default palette: one RGB colour per part id (the "rainbow" scheme), (24, 3) uint8.
RAINBOW_PART_COLORS: np.ndarray = np.array(
    [
        [110, 64, 170], [143, 61, 178], [178, 60, 178], [210, 62, 167], [238, 67, 149],
        [255, 78, 125], [255, 94, 99], [255, 115, 75], [255, 140, 56], [239, 167, 47],
        [217, 194, 49], [194, 219, 64], [175, 240, 91], [135, 245, 87], [96, 247, 96],
        [64, 243, 115], [40, 234, 141], [28, 219, 169], [26, 199, 194], [33, 176, 213],
        [47, 150, 224], [65, 125, 224], [84, 101, 214], [99, 81, 195],
    ],
    dtype=np.uint8,
)  # fmt: skip
RAINBOW_PART_COLORS.setflags(write=False)

#: ``blurBodyPart``'s default parts: left and right face.
FACE_PART_IDS: tuple[int, ...] = (0, 1)

PartSegmentationLike = Union[np.ndarray, Sequence[np.ndarray], Any]


# ---------------------------------------------------------------------------------------------
# helpers


def _part_maps(seg: PartSegmentationLike) -> list[np.ndarray]:
    """Normalise a part segmentation to a list of (H, W) int arrays (one per person)."""
    if hasattr(seg, "part_ids"):
        seg = seg.part_ids
    if isinstance(seg, np.ndarray):
        items = [seg]
    elif isinstance(seg, (list, tuple)):
        items = [getattr(s, "part_ids", s) for s in seg]
    else:
        raise TypeError(
            f"part segmentation must be an (H, W) int array or a list of them; got {type(seg).__name__}"
        )
    out = []
    for a in items:
        a = np.asarray(a)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"part segmentation must be (H, W) integer arrays; got {a.dtype} {a.shape}")
        out.append(a)
    if out and any(a.shape != out[0].shape for a in out):
        raise ValueError(f"all part maps must have the same size; got {[a.shape for a in out]}")
    return out


def _wxh(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _check_same_size(a: Sequence[int], a_name: str, b: Sequence[int], b_name: str) -> None:
    if tuple(a[:2]) != tuple(b[:2]):
        raise ValueError(
            f"dimensions must match: {a_name} is {_wxh(a)}, {b_name} is {_wxh(b)} (width x height)"
        )


def _check_image(image: object, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array; got {image.dtype} {image.shape}")
    return image


def _check_amount(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= MAX_BLUR:
        raise ValueError(f"{name} must be in [0, {MAX_BLUR:g}] pixels; got {value!r}")
    return v


def _check_opacity(value: float) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {value!r}")
    return v


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------
# API


def to_colored_part_mask(
    part_segmentation: PartSegmentationLike, palette: np.ndarray | Sequence[Sequence[int]] = RAINBOW_PART_COLORS
) -> np.ndarray | None:
    """Colour each part (BodyPix ``toColoredPartMask``).

    Parameters
    ----------
    part_segmentation : (H, W) int array (-1..23) or a list of them (one per person; a later
        person's parts paint over an earlier one's).
    palette : (>= 24, 3) RGB colours 0..255 indexed by part id; default :data:`RAINBOW_PART_COLORS`.

    Returns
    -------
    (H, W, 4) uint8 RGBA: the part's colour (alpha 255) on the person, opaque white
    (255, 255, 255, 255) elsewhere; ``None`` for an empty list (as BodyPix).

    Raises
    ------
    ValueError
        A part id with no colour in ``palette`` (BodyPix: "No color could be found for part id").
    """
    maps = _part_maps(part_segmentation)
    if not maps:
        return None
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.min() < 0 or pal.max() > 255:
        raise ValueError(f"palette must be (N, 3) RGB values 0..255; got shape {pal.shape}")
    lut = np.concatenate([np.full((1, 4), 255, np.uint8),
                          np.concatenate([pal.astype(np.uint8), np.full((len(pal), 1), 255, np.uint8)], 1)])  # fmt: skip
    index = np.zeros(maps[0].shape, np.int64)  # 0 = white, 1 + id = colour
    for m in maps:
        bad = (m < -1) | (m >= len(pal))
        if bad.any():
            raise ValueError(f"No color could be found for part id {int(m[bad].flat[0])}")
        on = m != -1
        index[on] = m[on].astype(np.int64) + 1
    return np.ascontiguousarray(lut[index])


def _line_coverage(n: int, centres: np.ndarray) -> np.ndarray:
    """Coverage 0..1 of pixels 0..n-1 by 1-pixel-wide lines centred at ``centres`` (canvas ``stroke()``).

    Returns a (len(centres), n) array; pixel j spans [j, j+1], a line [c - 0.5, c + 0.5].
    """
    j = np.arange(n, dtype=np.float64)
    lo = np.maximum(j[None, :], centres[:, None] - 0.5)
    hi = np.minimum(j[None, :] + 1, centres[:, None] + 0.5)
    return np.clip(hi - lo, 0.0, 1.0)


def draw_pixelated_mask(
    image: np.ndarray,
    colored_part_mask: np.ndarray,
    opacity: float = 0.7,
    mask_blur_amount: float = 0,
    pixel_cell_width: float = 10.0,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Draw a part mask as coarse cells with a white grid over the image (BodyPix ``drawPixelatedMask``).

    The mask (e.g. from :func:`to_colored_part_mask`) is blurred by ``mask_blur_amount``,
    shrunk to ``floor(W / cell) x floor(H / cell)`` cells by area averaging (a browser's
    smoothed ``drawImage`` downscale is implementation-defined), blown back up to
    the image size with nearest-neighbour sampling, overlaid with white 1-pixel lines (anti-aliased
    as a canvas stroke centred on ``x = cell * i`` and ``y = cell * i``, one per cell), and the
    image is drawn over it with alpha ``1 - opacity``::

        out = (1 - opacity) * image + opacity * pixelated_mask_with_grid

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    colored_part_mask : (H, W, 4) RGBA or (H, W, 3) RGB uint8, same size (taken as opaque
        where RGB; RGBA is composited over black, as a canvas shows it).
    opacity : 0..1, weight of the mask.
    mask_blur_amount : Gaussian sigma in pixels, 0..20.
    pixel_cell_width : cell size in pixels (> 0; BodyPix's default 10).
    flip_horizontal : mirror the output.

    Returns
    -------
    (H, W, 3) uint8 RGB.
    """
    img = _check_image(image)
    mask = np.asarray(colored_part_mask)
    if mask.dtype != np.uint8 or mask.ndim != 3 or mask.shape[2] not in (3, 4):
        raise ValueError(f"colored_part_mask must be (H, W, 3|4) uint8; got {mask.dtype} {mask.shape}")
    _check_same_size(img.shape, "image", mask.shape, "mask")
    op = _check_opacity(opacity)
    blur = _check_amount(mask_blur_amount, "mask_blur_amount")
    cell = float(pixel_cell_width)
    if not math.isfinite(cell) or cell <= 0:
        raise ValueError(f"pixel_cell_width must be > 0; got {pixel_cell_width!r}")
    H, W = img.shape[:2]
    rgb = mask[..., :3].astype(np.float32)
    if mask.shape[2] == 4:
        rgb = rgb * (mask[..., 3:4].astype(np.float32) / 255.0)
    if blur > 0:
        rgb = gaussian_blur(rgb, blur)
    sw, sh = int(W * (1.0 / cell)), int(H * (1.0 / cell))  # canvas width = truncated double
    if sw >= 1 and sh >= 1:
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        small = F.adaptive_avg_pool2d(t, (sh, sw))[0].permute(1, 2, 0).numpy()
        ys = np.minimum(((np.arange(H) + 0.5) * sh / H).astype(np.int64), sh - 1)
        xs = np.minimum(((np.arange(W) + 0.5) * sw / W).astype(np.int64), sw - 1)
        canvas = small[ys[:, None], xs[None, :]]
    else:
        canvas = np.zeros((H, W, 3), np.float32)  # an empty (0-sized) canvas draws nothing
    # white lines composited one after another = one "over" with alpha 1 - prod(1 - coverage)
    for axis, n, count in ((1, W, sw), (0, H, sh)):
        if count:
            a = 1.0 - np.prod(1.0 - _line_coverage(n, cell * np.arange(count)), axis=0)
            a = a.astype(np.float32).reshape((1, -1, 1) if axis == 1 else (-1, 1, 1))
            canvas = canvas * (1 - a) + 255.0 * a
    out = _to_uint8(img.astype(np.float32) * (1.0 - op) + canvas * op)
    return np.ascontiguousarray(np.fliplr(out)) if flip_horizontal else out


def body_part_mask_alpha(
    part_segmentation: PartSegmentationLike, body_part_ids: Sequence[int] = FACE_PART_IDS
) -> np.ndarray:
    """Alpha of BodyPix's body-part mask (``toMask(..., drawContour=true, ids)``): (H, W) uint8 0/255.

    0 on the listed parts, 255 elsewhere, except that BodyPix's contour strokes reset to 255 the
    upper diagonal neighbours of every listed-part pixel that (a) is not on the image border and
    (b) has a diagonal neighbour not in the listed parts (strokes to the lower neighbours are
    overwritten as the scan reaches them). Net effect: the part region loses a thin rim.
    """
    maps = _part_maps(part_segmentation)
    if not maps:
        raise ValueError("empty part segmentation")
    ids = np.asarray(list(body_part_ids), dtype=np.int64)
    H, W = maps[0].shape
    own = np.zeros((H, W), bool)
    stroke = np.zeros((H, W), bool)
    for m in maps:
        fg = np.isin(m, ids)
        own |= fg
        if H < 3 or W < 3:
            continue
        c = fg[1:-1, 1:-1]
        diag_bg = ~fg[:-2, :-2] | ~fg[:-2, 2:] | ~fg[2:, :-2] | ~fg[2:, 2:]
        stroke[1:-1, 1:-1] |= c & diag_bg
    alpha = np.where(own, 0, 255).astype(np.uint8)
    # a stroke source at (r, c) sets alpha 255 at (r - 1, c - 1) and (r - 1, c + 1) for good
    hit = np.zeros((H, W), bool)
    hit[:-1, :-1] |= stroke[1:, 1:]
    hit[:-1, 1:] |= stroke[1:, :-1]
    alpha[hit] = 255
    return alpha


def blur_body_part(
    image: np.ndarray,
    part_segmentation: PartSegmentationLike,
    body_part_ids_to_blur: Sequence[int] = FACE_PART_IDS,
    background_blur_amount: float = 3,
    edge_blur_amount: float = 3,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Blur the listed body parts (default: the face) and keep the rest sharp (BodyPix ``blurBodyPart``).

    ``blurred = blur(image, background_blur_amount)``; ``a = blur(alpha, edge_blur_amount) / 255``
    with ``alpha`` from :func:`body_part_mask_alpha`; ``out = a * image + (1 - a) * blurred``.
    An empty list of people returns the blurred image.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    part_segmentation : (H, W) part ids or a list of them (see module docstring), same size.
    body_part_ids_to_blur : part ids 0..23 to blur.
    background_blur_amount, edge_blur_amount : Gaussian sigmas in pixels, 0..20.
    flip_horizontal : mirror the output.

    Returns
    -------
    (H, W, 3) uint8 RGB.
    """
    img = _check_image(image)
    bb = _check_amount(background_blur_amount, "background_blur_amount")
    eb = _check_amount(edge_blur_amount, "edge_blur_amount")
    ids = [int(i) for i in body_part_ids_to_blur]
    if any(not 0 <= i < len(PART_CHANNELS) for i in ids):
        raise ValueError(f"body_part_ids_to_blur must be part ids 0..23; got {ids}")
    maps = _part_maps(part_segmentation)
    blurred = gaussian_blur(img.astype(np.float32), bb)
    if not maps:
        out = _to_uint8(blurred)
    else:
        _check_same_size(img.shape, "image", maps[0].shape, "part segmentation")
        alpha = body_part_mask_alpha(maps, ids).astype(np.float32) / 255.0
        a = gaussian_blur(alpha, eb)[..., None]
        out = _to_uint8(a * img.astype(np.float32) + (1.0 - a) * blurred)
    return np.ascontiguousarray(np.fliplr(out)) if flip_horizontal else out
