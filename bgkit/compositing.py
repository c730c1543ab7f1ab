"""Drawing with a person segmentation: the BodyPix output helpers, numpy in and out.

Ports of BodyPix's ``toMask``, ``drawMask`` and ``drawBokehEffect`` plus background
replacement and cut-out, all vectorised (torch on the CPU for the blurs and the blend,
no per-pixel Python, no global state).

Conventions
-----------
image
    Anything :func:`bgkit.load_image` accepts (uint8 numpy ``(H, W, 3)`` RGB, ``(H, W, 4)``
    RGBA whose alpha is ignored, ``(H, W)`` grey, a PIL image, a file path or a
    ``(3, H, W)`` torch tensor). Float numpy images are refused with ``TypeError``.
segmentation
    A :class:`bgkit.Segmentation` (its binary ``mask`` is used, like BodyPix's ``data``), or
    an ``(H, W)`` array giving the person weight per pixel:

    * ``bool``, or an integer dtype (e.g. uint8) holding only 0 and 1: a binary mask;
    * floating point in 0..1: a soft mask (for example ``Segmentation.probabilities``),
      used directly as the person's opacity.

    A uint8 mask of 0/255 is refused (divide it by 255 first). A ``torch.Tensor`` is
    converted with ``.numpy()``.
colours
    RGBA tuples of ints 0..255 (an RGB 3-tuple is opaque), ``'#rrggbb'`` / ``'#rrggbbaa'``
    (also ``'#rgb'`` / ``'#rgba'``) strings, or BodyPix-style dicts ``{'r', 'g', 'b', 'a'}``
    (``'a'`` optional). Anything else raises ``ValueError``; see :func:`parse_color`.
blur amounts
    Standard deviations in pixels of a Gaussian (the CSS ``blur(Npx)`` filter), 0..20;
    see :mod:`bgkit.filters` for the edge handling (edge pixels are replicated).
flip_horizontal
    Mirrors the whole output left-right, as BodyPix's canvas transform does:
    ``f(..., flip_horizontal=True) == np.fliplr(f(..., flip_horizontal=False))``.

Sizes of image, segmentation, mask image and background image (unless it is resized)
must agree, else ``ValueError`` naming both sizes (as width x height).
All outputs are C-contiguous uint8 arrays, RGB(A) channel order.
"""

from __future__ import annotations

import math
import re
from numbers import Real
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch
from PIL import Image

from .filters import _blur_hwc, _check_sigma, _masked_blur_hwc
from .imageio import ImageLike, load_image
from .segmentation import Segmentation

__all__ = [
    "Color",
    "MAX_BLUR",
    "composite",
    "draw_bokeh_effect",
    "draw_mask",
    "parse_color",
    "remove_background",
    "replace_background",
    "to_mask",
]

#: A colour: RGBA/RGB ints 0..255, '#rrggbb[aa]' string, or {'r','g','b'[,'a']} dict.
Color = Union[Sequence[int], str, Mapping[str, int]]
SegmentationLike = Union[Segmentation, np.ndarray, Any]

#: Largest accepted blur amount (pixels), as in the BodyPix demo sliders.
MAX_BLUR = 20.0

_HEX = re.compile(r"#([0-9a-fA-F]+)")


# ---------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------


def parse_color(color: Color, name: str = "color") -> tuple[int, int, int, int]:
    """Return ``color`` as an ``(r, g, b, a)`` tuple of ints in 0..255.

    Parameters
    ----------
    color : tuple, list, ndarray, str or dict
        ``(r, g, b)`` (opaque) or ``(r, g, b, a)`` integers in 0..255; ``'#rrggbb'``,
        ``'#rrggbbaa'``, ``'#rgb'`` or ``'#rgba'``; or ``{'r':, 'g':, 'b':[, 'a':]}``.
    name : str, optional
        Argument name used in the error message.

    Raises
    ------
    ValueError
        For anything else (wrong length, non-integers, values outside 0..255, bad hex).
    """
    if isinstance(color, str):
        m = _HEX.fullmatch(color.strip())
        digits = m.group(1) if m else ""
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        if len(digits) not in (6, 8):
            raise ValueError(
                f"{name} {color!r} is not a colour string; use '#rrggbb' or '#rrggbbaa' (hex digits)"
            )
        vals = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
        return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 255)
    if isinstance(color, Mapping):
        try:
            seq: Any = [color["r"], color["g"], color["b"], color.get("a", 255)]
        except KeyError:
            raise ValueError(
                f"{name} dict must have keys 'r', 'g', 'b' (and optionally 'a'); got {dict(color)!r}"
            ) from None
    elif isinstance(color, (tuple, list, np.ndarray)):
        seq = list(np.asarray(color).ravel()) if isinstance(color, np.ndarray) else list(color)
    else:
        raise ValueError(
            f"{name} must be an (r, g, b[, a]) tuple of ints 0..255 or a '#rrggbb[aa]' string; "
            f"got {type(color).__name__}"
        )
    if len(seq) not in (3, 4):
        raise ValueError(f"{name} must have 3 (RGB) or 4 (RGBA) components; got {len(seq)}: {color!r}")
    out = []
    for v in seq:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Real, np.number)):
            raise ValueError(f"{name} components must be integers 0..255; got {color!r}")
        fv = float(v)
        if not math.isfinite(fv) or fv != int(fv) or not 0 <= fv <= 255:
            raise ValueError(f"{name} components must be integers 0..255; got {color!r}")
        out.append(int(fv))
    if len(out) == 3:
        out.append(255)
    return (out[0], out[1], out[2], out[3])


def _is_color(x: object) -> bool:
    if isinstance(x, str):
        return x.strip().startswith("#")
    if isinstance(x, (tuple, list, Mapping)):
        return True
    return isinstance(x, np.ndarray) and x.ndim == 1


def _check_amount(value: object, name: str, hi: float = MAX_BLUR) -> float:
    try:
        v = _check_sigma(value, name)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= hi:
        raise ValueError(f"{name} must be a number in [0, {hi:g}]; got {value!r}")
    return v


def _check_opacity(opacity: object) -> float:
    if isinstance(opacity, bool) or not isinstance(opacity, (Real, np.integer, np.floating)):
        raise TypeError(f"opacity must be a number in [0, 1], not {type(opacity).__name__}")
    v = float(opacity)  # type: ignore[arg-type]
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise ValueError(f"opacity must be in [0, 1]; got {opacity!r}")
    return v


def _size(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _check_same_size(a_shape: Sequence[int], a_name: str, b_shape: Sequence[int], b_name: str) -> None:
    if tuple(a_shape[:2]) != tuple(b_shape[:2]):
        raise ValueError(
            f"size mismatch: {a_name} is {_size(a_shape)} but {b_name} is {_size(b_shape)} "
            "(width x height); they must be the same size"
        )


def _person(segmentation: SegmentationLike, name: str = "segmentation") -> tuple[np.ndarray, bool]:
    """Return (person weight as float32 (H, W) in 0..1, whether it is binary)."""
    if isinstance(segmentation, Segmentation):
        return segmentation.mask.astype(np.float32), True
    arr = segmentation
    if type(arr).__module__.startswith("torch") and hasattr(arr, "detach"):
        arr = arr.detach().cpu().numpy()
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            f"{name} must be a Segmentation or an (H, W) mask array; got {type(segmentation).__name__}"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} array must have shape (H, W); got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype == bool:
        return arr.astype(np.float32), True
    if np.issubdtype(arr.dtype, np.integer):
        if int(arr.min()) < 0 or int(arr.max()) > 1:
            raise ValueError(
                f"integer {name} masks must hold only 0 and 1 (got values in {int(arr.min())}..{int(arr.max())}); "
                "for a 0/255 mask pass mask > 127 or mask / 255"
            )
        return arr.astype(np.float32), True
    if np.issubdtype(arr.dtype, np.floating):
        p = np.array(arr, dtype=np.float32)  # a private, writable, contiguous copy
        lo, hi = float(p.min()), float(p.max())
        if not (0.0 <= lo and hi <= 1.0):  # NaN fails too
            raise ValueError(f"float {name} arrays must hold values in 0..1; got {lo:g}..{hi:g}")
        return p, False
    raise TypeError(f"{name} array must be bool, integer 0/1 or float 0..1; got dtype {arr.dtype}")


def _mask_image(mask_image: object) -> np.ndarray:
    """Return the mask image as (H, W, 4) uint8 RGBA."""
    if isinstance(mask_image, Image.Image):
        return np.asarray(mask_image.convert("RGBA"))
    if not isinstance(mask_image, np.ndarray):
        raise TypeError(
            f"mask_image must be an (H, W, 4) RGBA or (H, W, 3) RGB uint8 array; got {type(mask_image).__name__}"
        )
    if mask_image.dtype != np.uint8:
        raise TypeError(f"mask_image must be uint8 (0..255); got dtype {mask_image.dtype}")
    if mask_image.ndim != 3 or mask_image.shape[2] not in (3, 4):
        raise ValueError(f"mask_image must have shape (H, W, 4) or (H, W, 3); got {mask_image.shape}")
    if mask_image.shape[2] == 3:
        out = np.empty(mask_image.shape[:2] + (4,), np.uint8)
        out[..., :3] = mask_image
        out[..., 3] = 255
        return out
    return mask_image


def _cover(background: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``background`` to cover width x height (keeping its aspect) and centre-crop it."""
    bh, bw = background.shape[:2]
    if (bw, bh) == (width, height):
        return background
    scale = max(width / bw, height / bh)
    cw, ch = width / scale, height / scale
    left, top = (bw - cw) / 2.0, (bh - ch) / 2.0
    im = Image.fromarray(background).resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch)
    )
    return np.asarray(im)


# ---------------------------------------------------------------------------
# the blend
# ---------------------------------------------------------------------------


def _as_float_t(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.dtype == torch.float32 else x.float()
    if not x.flags.writeable or any(s < 0 for s in x.strides):
        x = np.array(x)
    t = torch.from_numpy(x)
    return t if t.dtype == torch.float32 else t.float()


def _blend(fg: Any, alpha: Any, bg: Any) -> np.ndarray:
    """``fg * alpha + bg * (1 - alpha)``, rounded to uint8, all channel-last.

    ``fg`` and ``bg`` are (H, W, C) arrays/tensors (uint8 or float 0..255) or, for ``bg``,
    a (C,) colour; ``alpha`` is (H, W) or (H, W, 1) in 0..1. alpha == 0 gives ``bg`` and
    alpha == 1 gives ``fg`` exactly (for integer-valued inputs).
    """
    f = _as_float_t(fg)
    b = _as_float_t(bg)
    a = _as_float_t(alpha)
    if a.ndim == 2:
        a = a.unsqueeze(-1)
    out = torch.sub(f, b)
    out.mul_(a).add_(b).clamp_(0.0, 255.0).add_(0.5)  # then truncation = round half up
    return np.ascontiguousarray(out.to(torch.uint8).numpy())


def _flip(out: np.ndarray, flip: bool) -> np.ndarray:
    return np.ascontiguousarray(out[:, ::-1]) if flip else out


def composite(image: Any, alpha: Any, background: Any) -> np.ndarray:
    """Blend ``image`` over ``background``: ``out = image * alpha + background * (1 - alpha)``.

    The one blend behind every function in this module (vectorised, float32).

    Parameters
    ----------
    image : ndarray (H, W, C) or image-like
        Foreground. A 3-D numpy array is used as is (uint8, or float in 0..255, any
        number of channels C); anything else goes through :func:`bgkit.load_image`
        (giving RGB).
    alpha : ndarray, shape (H, W) or (H, W, 1)
        Foreground opacity, float in 0..1 (bool or 0/1 integers also accepted).
    background : ndarray (H, W, C), image-like, or colour
        Same size and channel count as ``image``; or a colour (see :func:`parse_color`),
        whose first C components are used (C = 3: RGB, C = 4: RGBA).

    Returns
    -------
    ndarray, shape (H, W, C), uint8
        Rounded to nearest. alpha 0 gives ``background`` and alpha 1 gives ``image`` exactly.

    Raises
    ------
    ValueError
        Sizes or channel counts differ, alpha outside 0..1, bad colour.
    TypeError
        An image or background of the wrong kind or dtype.
    """
    img = image if isinstance(image, np.ndarray) and image.ndim == 3 else load_image(image)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"image must be uint8 or float (0..255); got dtype {img.dtype}")
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    a, _ = _person(a, "alpha")
    _check_same_size(img.shape, "image", a.shape, "alpha")
    c = img.shape[2]
    if _is_color(background):
        rgba = parse_color(background, "background")
        if c not in (3, 4):
            raise ValueError(f"a colour background needs an image with 3 or 4 channels; got {c}")
        bg: Any = np.asarray(rgba[:c], dtype=np.float32)
    else:
        bg = background if isinstance(background, np.ndarray) and background.ndim == 3 else load_image(background)
        _check_same_size(img.shape, "image", bg.shape, "background")
        if bg.shape[2] != c:
            raise ValueError(f"image has {c} channels but background has {bg.shape[2]}")
        if bg.dtype != np.uint8 and not np.issubdtype(bg.dtype, np.floating):
            raise TypeError(f"background must be uint8 or float (0..255); got dtype {bg.dtype}")
    with torch.inference_mode():
        return _blend(img, a, bg)


# ---------------------------------------------------------------------------
# BodyPix API
# ---------------------------------------------------------------------------


def to_mask(
    segmentation: SegmentationLike,
    foreground: Color = (0, 0, 0, 0),
    background: Color = (0, 0, 0, 255),
) -> np.ndarray:
    """Colour a segmentation: ``foreground`` on the person, ``background`` elsewhere (BodyPix ``toMask``).

    Parameters
    ----------
    segmentation : Segmentation or ndarray (H, W)
        See the module docstring. A soft (float) mask mixes the two colours in
        proportion (``p * foreground + (1 - p) * background`` per RGBA component).
    foreground, background : colour
        RGBA (or RGB = opaque) colours; defaults are BodyPix's transparent person on
        opaque black.

    Returns
    -------
    ndarray, shape (H, W, 4), uint8
        RGBA mask image, ready for :func:`draw_mask`.
    """
    p, binary = _person(segmentation)
    fg = parse_color(foreground, "foreground")
    bg = parse_color(background, "background")
    if binary:
        lut = np.array([bg, fg], dtype=np.uint8)
        return np.take(lut, p.astype(np.uint8), axis=0)
    with torch.inference_mode():
        fg_t = torch.tensor(fg, dtype=torch.float32).expand(*p.shape, 4)
        return _blend(fg_t, p, np.asarray(bg, np.float32))


def draw_mask(
    image: ImageLike,
    mask_image: np.ndarray,
    opacity: float = 0.7,
    mask_blur_amount: float = 0,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Draw an RGBA mask image over ``image`` (BodyPix ``drawMask``).

    Canvas source-over with ``globalAlpha = opacity``, the mask first blurred by CSS
    ``blur(mask_blur_amount px)`` in premultiplied alpha. With ``a`` the mask alpha in
    0..1 and ``rgb`` its colour::

        out = blur(rgb * a) * opacity + image * (1 - blur(a) * opacity)

    Parameters
    ----------
    image : image-like
        The picture, (H, W, 3) RGB once loaded.
    mask_image : ndarray, shape (H, W, 4) or (H, W, 3), uint8; or PIL image
        RGBA mask (e.g. from :func:`to_mask`); RGB is taken as opaque.
    opacity : float
        0..1. 0 returns ``image`` unchanged.
    mask_blur_amount : float
        Gaussian sigma in pixels applied to the mask, 0..20.
    flip_horizontal : bool
        Mirror the output left-right.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8 RGB

    Raises
    ------
    ValueError
        Size mismatch, opacity outside [0, 1], blur outside [0, 20], bad mask shape.
    TypeError
        Image or mask of the wrong kind / dtype.
    """
    img = load_image(image)
    mask = _mask_image(mask_image)
    _check_same_size(img.shape, "image", mask.shape, "mask_image")
    op = _check_opacity(opacity)
    blur = _check_amount(mask_blur_amount, "mask_blur_amount")
    with torch.inference_mode():
        rgb = mask[:, :, :3]
        a = mask[:, :, 3].astype(np.float32)
        a /= np.float32(255.0)  # exact for 0 and 255
        if blur > 0:
            # premultiplied blur: colour blur(rgb a) / blur(a), coverage blur(a)
            fg, alpha = _masked_blur_hwc(rgb.astype(np.float32), a, blur)
        else:
            fg, alpha = rgb, a
        if op != 1.0:
            alpha = alpha * np.float32(op)
        out = _blend(fg, alpha, img)
    return _flip(out, flip_horizontal)


def draw_bokeh_effect(
    image: ImageLike,
    segmentation: SegmentationLike,
    background_blur_amount: float = 3,
    edge_blur_amount: float = 3,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Blur the background behind the person (BodyPix ``drawBokehEffect``).

    The background is blurred with a Gaussian of sigma ``background_blur_amount`` by
    normalised convolution with weight ``1 - person`` (:func:`bgkit.filters.masked_blur`),
    so the person's colours do not bleed into it (no halo). The sharp image is then
    composited over it with the person mask softened by a Gaussian of sigma
    ``edge_blur_amount``.

    Parameters
    ----------
    image : image-like
        (H, W, 3) RGB once loaded.
    segmentation : Segmentation or ndarray (H, W)
        Person mask, same size as the image (see module docstring).
    background_blur_amount, edge_blur_amount : float
        Gaussian sigmas in pixels, 0..20.
    flip_horizontal : bool
        Mirror the output left-right.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8 RGB
    """
    img = load_image(image)
    p, _ = _person(segmentation)
    _check_same_size(img.shape, "image", p.shape, "segmentation")
    bb = _check_amount(background_blur_amount, "background_blur_amount")
    eb = _check_amount(edge_blur_amount, "edge_blur_amount")
    with torch.inference_mode():
        x = img.astype(np.float32)
        if bb > 0:
            bg, den = _masked_blur_hwc(x, 1.0 - p, bb)
        else:
            bg, den = x, None
        if eb == 0:
            alpha = p
        elif eb == bb:
            alpha = 1.0 - den  # blur(p) = 1 - blur(1 - p): the blur is linear and keeps constants
        else:
            alpha = _blur_hwc(p[:, :, None], eb)
        out = _blend(x, alpha, bg)
    return _flip(out, flip_horizontal)


def replace_background(
    image: ImageLike,
    segmentation: SegmentationLike,
    background: Any,
    edge_blur_amount: float = 3,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Put the person in front of a new background picture or colour.

    Parameters
    ----------
    image : image-like
        (H, W, 3) RGB once loaded.
    segmentation : Segmentation or ndarray (H, W)
        Person mask, same size as the image (see module docstring).
    background : image-like or colour
        A picture (anything :func:`bgkit.load_image` accepts, any size: it is scaled to
        cover the frame keeping its aspect ratio, centre-cropped, with PIL bilinear
        resampling; pass one already H x W to skip that), or a colour (see
        :func:`parse_color`; strings must start with ``'#'``, other strings are paths).
        A colour with alpha < 255 is laid over the original frame with that opacity
        (a tint) instead of replacing it.
    edge_blur_amount : float
        Gaussian sigma in pixels that softens the person's edge, 0..20. With 0 a binary
        mask gives person pixels exactly from ``image`` and the rest exactly ``background``.
    flip_horizontal : bool
        Mirror the whole output (background included) left-right.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8 RGB
    """
    img = load_image(image)
    p, _ = _person(segmentation)
    _check_same_size(img.shape, "image", p.shape, "segmentation")
    eb = _check_amount(edge_blur_amount, "edge_blur_amount")
    h, w = img.shape[:2]
    if _is_color(background):
        r, g, b, a = parse_color(background, "background")
        bg: Any = np.array([r, g, b], dtype=np.float32)
        if a < 255:
            with torch.inference_mode():
                bg = torch.lerp(_as_float_t(img), torch.from_numpy(bg), a / 255.0)
    else:
        bg = _cover(load_image(background), w, h)
    with torch.inference_mode():
        alpha = _blur_hwc(p[:, :, None], eb) if eb > 0 else p
        out = _blend(img, alpha, bg)
    return _flip(out, flip_horizontal)


def remove_background(
    image: ImageLike,
    segmentation: SegmentationLike,
    edge_blur_amount: float = 0,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Cut the person out: an RGBA image that is transparent where there is no person.

    Parameters
    ----------
    image : image-like
        (H, W, 3) RGB once loaded.
    segmentation : Segmentation or ndarray (H, W)
        Person mask, same size as the image (see module docstring).
    edge_blur_amount : float
        Gaussian sigma in pixels that softens the alpha edge, 0..20 (0: alpha is exactly
        ``255 * mask``).
    flip_horizontal : bool
        Mirror the output left-right.

    Returns
    -------
    ndarray, shape (H, W, 4), uint8 RGBA
        RGB is ``image`` unchanged (not premultiplied); alpha = round(255 * person).
    """
    img = load_image(image)
    p, _ = _person(segmentation)
    _check_same_size(img.shape, "image", p.shape, "segmentation")
    eb = _check_amount(edge_blur_amount, "edge_blur_amount")
    out = np.empty(img.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = img
    with torch.inference_mode():
        alpha = _blur_hwc(p[:, :, None], eb)[:, :, 0] if eb > 0 else p
        a = np.multiply(alpha, np.float32(255.0))
        np.clip(a, 0.0, 255.0, out=a)
        a += np.float32(0.5)
        out[..., 3] = a  # float -> uint8 assignment truncates: round half up
    return _flip(out, flip_horizontal)
