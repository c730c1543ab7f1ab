"""Drawing with a person segmentation: the BodyPix output helpers, numpy in and out.

Ports of BodyPix's ``toMask``, ``drawMask`` and ``drawBokehEffect`` plus background
replacement and cut-out, all vectorised. Each public function checks its arguments and calls a
torch core (the ``*_t`` functions: uint8/float32 tensors, channel-last, on any device), which
the pipeline calls directly with the frame it already holds.

Conventions
-----------
image
    Anything :func:`bgkit.load_image` accepts (uint8 numpy ``(H, W, 3)`` RGB, ``(H, W, 4)``
    RGBA whose alpha is ignored, ``(H, W)`` grey, a PIL image, a file path or a
    ``(3, H, W)`` torch tensor). Float numpy images are refused with ``TypeError``.
segmentation
    A :class:`bgkit.Segmentation`, or an ``(H, W)`` array giving the person weight per pixel.
    From a ``Segmentation``, ``to_mask`` (and so ``draw_mask``) uses the binary ``mask``, as
    BodyPix does with its ``data``; bokeh, replace and cut-out blend with its soft ``alpha``
    (anti-aliased edges, no stair steps). An array is used as it is:

    * ``bool``, or an integer dtype (e.g. uint8) holding only 0 and 1: a binary mask;
    * floating point in 0..1: a soft mask (for example ``Segmentation.alpha``).

    A uint8 mask of 0/255 is refused (divide it by 255 first). A ``torch.Tensor`` is
    converted with ``.numpy()``.
colours
    RGBA tuples of ints 0..255 (an RGB 3-tuple is opaque), ``'#rrggbb'`` / ``'#rrggbbaa'``
    (also ``'#rgb'`` / ``'#rgba'``) strings, or BodyPix-style dicts ``{'r', 'g', 'b', 'a'}``
    (``'a'`` optional). Anything else raises ``ValueError``; see :func:`bgkit.parse_color`.
blur amounts
    Standard deviations in pixels of a Gaussian (the CSS ``blur(Npx)`` filter), 0..20;
    see :mod:`bgkit.ops.filters` for the edge handling (edge pixels are replicated).
flip_horizontal
    Mirrors the whole output left-right, as BodyPix's canvas transform does:
    ``f(..., flip_horizontal=True) == np.fliplr(f(..., flip_horizontal=False))``.

Sizes of image, segmentation, mask image and background image (unless it is resized)
must agree, else ``ValueError`` naming both sizes (as width x height).
All outputs are C-contiguous uint8 arrays, RGB(A) channel order.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
import torch
from PIL import Image

from ..core.checks import check_number
from ..core.colors import Color, is_color, parse_color
from ..core.segmentation import Segmentation
from ..io.images import ImageLike, load_image
from . import kernels
from .filters import MASKED_BLUR_EPS, background_blur_hwc, blur_hwc, bokeh_background_low, mask_blur_low, masked_blur_hwc

__all__ = [
    "MAX_BLUR",
    "bokeh_t",
    "composite",
    "cover",
    "cutout_t",
    "draw_bokeh_effect",
    "draw_mask",
    "draw_mask_t",
    "draw_two_colour_mask_t",
    "remove_background",
    "replace_background",
    "replace_t",
    "to_mask",
    "to_mask_t",
]

SegmentationLike = Union[Segmentation, np.ndarray, Any]

from .defaults import MAX_BLUR  # noqa: E402 - re-exported here, where it is used


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------


def _amount(value: object, name: str) -> float:
    return check_number(value, name, 0.0, MAX_BLUR, unit="px")


def _size(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _check_same_size(a_shape: Sequence[int], a_name: str, b_shape: Sequence[int], b_name: str) -> None:
    if tuple(a_shape[:2]) != tuple(b_shape[:2]):
        raise ValueError(
            f"size mismatch: {a_name} is {_size(a_shape)} but {b_name} is {_size(b_shape)} "
            "(width x height); they must be the same size"
        )


def _person(segmentation: SegmentationLike, soft: bool, name: str = "segmentation") -> torch.Tensor:
    """The person weight as a float32 (H, W) tensor in 0..1: a Segmentation's ``alpha`` when
    ``soft`` (else its ``mask``), or a checked array."""
    if isinstance(segmentation, Segmentation):
        return segmentation.tensor("alpha").float() if soft else segmentation.tensor("mask").float()
    arr = segmentation
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a Segmentation or an (H, W) mask array; got {type(segmentation).__name__}")
    if arr.ndim != 2:
        raise ValueError(f"{name} array must have shape (H, W); got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype == bool:
        return torch.from_numpy(arr.astype(np.float32))
    if np.issubdtype(arr.dtype, np.integer):
        if int(arr.min()) < 0 or int(arr.max()) > 1:
            raise ValueError(
                f"integer {name} masks must hold only 0 and 1 (got values in {int(arr.min())}..{int(arr.max())}); "
                "for a 0/255 mask pass mask > 127 or mask / 255"
            )
        return torch.from_numpy(arr.astype(np.float32))
    if np.issubdtype(arr.dtype, np.floating):
        p = np.array(arr, dtype=np.float32)  # a private, writable, contiguous copy
        lo, hi = float(p.min()), float(p.max())
        if not (0.0 <= lo and hi <= 1.0):  # NaN fails too
            raise ValueError(f"float {name} arrays must hold values in 0..1; got {lo:g}..{hi:g}")
        return torch.from_numpy(p)
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


def cover(background: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``background`` (H, W, C uint8) to cover width x height keeping its aspect ratio, and
    centre-crop it (PIL bilinear); returned as is when it already has that size."""
    bh, bw = background.shape[:2]
    if (bw, bh) == (width, height):
        return background
    scale = max(width / bw, height / bh)
    cw, ch = width / scale, height / scale
    left, top = (bw - cw) / 2.0, (bh - ch) / 2.0
    im = Image.fromarray(background).resize((width, height), Image.Resampling.BILINEAR,
                                            box=(left, top, left + cw, top + ch))
    return np.asarray(im)


def _tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if not x.flags.writeable or any(s < 0 for s in x.strides):
        x = np.array(x)
    return torch.from_numpy(x)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.cpu().numpy())


# ---------------------------------------------------------------------------
# torch cores: HWC tensors on any device
# ---------------------------------------------------------------------------


def blend_t(fg: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """``fg * alpha + bg * (1 - alpha)`` rounded to uint8, channel-last.

    ``fg``/``bg``: (H, W, C) tensors (uint8, or float 0..255) or, for ``bg``, a (C,) colour;
    ``alpha``: (H, W) or (H, W, 1) in 0..1. alpha 0 gives ``bg`` and alpha 1 gives ``fg``
    exactly (for integer-valued inputs).
    """
    f = fg.float()
    b = bg.float()
    a = alpha.float() if isinstance(alpha, torch.Tensor) else torch.tensor(float(alpha), device=f.device)
    if a.ndim == 2:
        a = a.unsqueeze(-1)
    if b.shape != f.shape:
        f, b = torch.broadcast_tensors(f, b)
    if a.ndim == f.ndim and a.shape != f.shape and a.device.type == "cpu":
        a = a.expand(f.shape).contiguous()  # same-shape operands: a vectorised lerp on a CPU
    out = torch.lerp(b, f, a)  # exact at alpha 0 and 1
    out.clamp_(0.0, 255.0).add_(0.5)  # then truncation = round half up
    return out.to(torch.int32).to(torch.uint8)  # via int32: a CPU converts several times faster


def _flip(out: torch.Tensor, flip: bool) -> torch.Tensor:
    return out.flip(1) if flip else out


def to_mask_t(person: torch.Tensor, foreground: tuple[int, ...], background: tuple[int, ...],
              binary: bool = True) -> torch.Tensor:
    """(H, W) person weight -> (H, W, 4) uint8 RGBA: ``foreground`` on the person, ``background``
    elsewhere, mixed in proportion where the weight is soft (``binary=False``)."""
    fg = torch.tensor(foreground, dtype=torch.uint8, device=person.device)
    bg = torch.tensor(background, dtype=torch.uint8, device=person.device)
    if binary:
        return torch.where(person.unsqueeze(-1) > 0.5, fg, bg)
    return blend_t(fg.float().expand(*person.shape, 4), person, bg)


def _mask_colours_t(foreground: tuple[int, ...], background: tuple[int, ...], device: torch.device
                    ) -> tuple[torch.Tensor, ...]:
    """(a_f, a_b, c_f, c_b): the two colours' alphas (0..1) and RGB (0..255) as float32 tensors."""
    a_f, a_b = (torch.tensor(float(c[3]), dtype=torch.float32, device=device).div_(255.0) for c in (foreground, background))
    c_f, c_b = (torch.tensor(c[:3], dtype=torch.float32, device=device) for c in (foreground, background))
    return a_f, a_b, c_f, c_b


def draw_two_colour_mask_t(image: torch.Tensor, person: torch.Tensor, foreground: tuple[int, ...],
                           background: tuple[int, ...], opacity: float, flip: bool = False,
                           blur: float = 0.0) -> torch.Tensor:
    """``draw_mask_t(image, to_mask_t(person, foreground, background), opacity, blur)`` for a
    binary ``person`` mask, the same pixels in fewer passes: the mask picture has two colours, so
    its premultiplied blur follows from one blurred channel, ``m = blur(person)``: colour
    ``(c_f a_f m + c_b a_b (1 - m) + eps c) / (a_f m + a_b (1 - m) + eps)``, coverage
    ``a_f m + a_b (1 - m)`` (``c`` the pixel's own mask colour, as :func:`masked_blur` falls back to)."""
    device = image.device
    on = person if person.dtype == torch.bool else person > 0.5
    colours = np.array([foreground[:3], background[:3]], np.float32)
    alphas = np.array([foreground[3], background[3]], np.float32) / np.float32(255.0)  # as torch divides
    if blur <= 0:
        fast = kernels.two_colour_mask(image, on, colours, alphas * np.float32(opacity), flip)
        if fast is not None:
            return fast
        a_f, a_b, c_f, c_b = _mask_colours_t(foreground, background, device)
        if float(a_f) == 0.0 or float(a_b) == 0.0:  # one side keeps the picture: one blend, one choice
            colour, weight, keep = (c_b, a_b, on) if float(a_f) == 0.0 else (c_f, a_f, ~on)
            blended = blend_t(colour, weight.mul_(opacity), image)
            return _flip(torch.where(keep.unsqueeze(-1), image, blended), flip)
        colour = torch.where(on.unsqueeze(-1), c_f, c_b)
        alpha = torch.where(on, a_f, a_b).mul_(opacity)
        return _flip(blend_t(colour, alpha, image), flip)
    low = mask_blur_low(on, blur)  # the fused CPU kernels: the coverage's upsampling fused into the blend
    if low is not None:
        fast = kernels.blurred_two_colour_mask_upsampled(image, on, *low, colours, alphas, opacity, MASKED_BLUR_EPS,
                                                         flip)
        if fast is not None:
            return fast
    m = blur_hwc(on.float().unsqueeze(-1), blur)[:, :, 0]
    fast = kernels.blurred_two_colour_mask(image, on, m, colours, alphas, opacity, MASKED_BLUR_EPS, flip)
    if fast is not None:
        return fast
    a_f, a_b, c_f, c_b = _mask_colours_t(foreground, background, device)
    pf, pb = c_f * a_f, c_b * a_b
    coverage = m * (a_f - a_b) + a_b
    own = torch.where(on.unsqueeze(-1), c_f, c_b)
    colour = torch.addcmul(pb, m.unsqueeze(-1), pf - pb).add_(own, alpha=MASKED_BLUR_EPS)
    colour.div_((coverage + MASKED_BLUR_EPS).unsqueeze(-1))
    if opacity != 1.0:
        coverage = coverage * opacity
    return _flip(blend_t(colour, coverage, image), flip)


def draw_mask_t(image: torch.Tensor, mask_rgba: torch.Tensor, opacity: float, blur: float,
                flip: bool = False) -> torch.Tensor:
    """Canvas source-over of an RGBA mask (H, W, 4 uint8) on ``image`` (H, W, 3 uint8), see :func:`draw_mask`."""
    rgb = mask_rgba[:, :, :3]
    a = mask_rgba[:, :, 3].float().div_(255.0)  # exact for 0 and 255
    if blur > 0:  # premultiplied blur: colour blur(rgb a) / blur(a), coverage blur(a)
        fg, alpha = masked_blur_hwc(rgb.float(), a, blur)
    else:
        fg, alpha = rgb, a
    if opacity != 1.0:
        alpha = alpha * opacity
    return _flip(blend_t(fg, alpha, image), flip)


def bokeh_t(image: torch.Tensor, person: torch.Tensor, background_blur: float, edge_blur: float,
            flip: bool = False) -> torch.Tensor:
    """The background blurred around the sharp person, see :func:`draw_bokeh_effect`."""
    if (background_blur > 0 and edge_blur == 0 and image.dtype == torch.uint8 and image.device.type == "cpu"
            and kernels.available()):
        low = bokeh_background_low(image, person, background_blur)
        if low is not None:  # reduce + blur in one pass; normalising and upsampling fused into the blend
            blurred, fallback, f, start = low
            fast = kernels.blend_upsampled_background(image, blurred, fallback, MASKED_BLUR_EPS, f, start, person,
                                                      flip)
            if fast is not None:
                return fast
    x = image.float()
    if background_blur > 0:
        bg, den = background_blur_hwc(x, 1.0 - person, background_blur, weights_out=edge_blur == background_blur)
    else:
        bg, den = x, None
    if edge_blur == 0:
        alpha = person
    elif edge_blur == background_blur and den is not None:
        alpha = 1.0 - den  # blur(p) = 1 - blur(1 - p): the blur is linear and keeps constants
    else:
        alpha = blur_hwc(person.unsqueeze(-1), edge_blur)
    fast = kernels.blend(image, alpha.reshape(alpha.shape[:2]), bg, flip)
    if fast is not None:
        return fast
    return _flip(blend_t(x, alpha, bg), flip)


def replace_t(image: torch.Tensor, person: torch.Tensor, background: torch.Tensor | tuple[int, ...],
              edge_blur: float, flip: bool = False, foreground: torch.Tensor | None = None) -> torch.Tensor:
    """The person (the picture, or a matting model's ``foreground`` colours, (H, W, 3) 0..1) over
    ``background``: an (H, W, 3) picture tensor, or an RGBA colour (translucent colours tint the
    original picture), see :func:`replace_background`."""
    if isinstance(background, tuple):
        r, g, b, a = background
        colour = torch.tensor([r, g, b], dtype=torch.float32, device=image.device)
        bg = torch.lerp(image.float(), colour, a / 255.0) if a < 255 else colour
    else:
        bg = background
    alpha = blur_hwc(person.unsqueeze(-1), edge_blur) if edge_blur > 0 else person
    fast = kernels.blend(image if foreground is None else foreground, alpha.reshape(alpha.shape[:2]), bg, flip,
                         1.0 if foreground is None else 255.0)
    if fast is not None:
        return fast
    fg = image if foreground is None else foreground.float().mul(255.0)
    return _flip(blend_t(fg, alpha, bg), flip)


def cutout_t(image: torch.Tensor, person: torch.Tensor, edge_blur: float, flip: bool = False,
             foreground: torch.Tensor | None = None) -> torch.Tensor:
    """RGBA: the picture (or a matting model's ``foreground`` colours, (H, W, 3) 0..1) with alpha
    ``round(255 * person)``, see :func:`remove_background`."""
    alpha = blur_hwc(person.unsqueeze(-1), edge_blur)[:, :, 0] if edge_blur > 0 else person
    fast = kernels.cutout(image if foreground is None else foreground, alpha, flip,
                          1.0 if foreground is None else 255.0)
    if fast is not None:
        return fast
    h, w = alpha.shape[-2:]
    out = torch.empty((h, w, 4), dtype=torch.uint8, device=image.device)
    out[:, :, 3] = _to_uint8(alpha.float().mul(255.0))
    out[:, :, :3] = image if foreground is None else _to_uint8(foreground.float().mul(255.0))
    return _flip(out, flip)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float 0..255 (any values) rounded half up to uint8 (via int32: a CPU converts several times faster)."""
    return x.clamp_(0.0, 255.0).add_(0.5).to(torch.int32).to(torch.uint8)


# ---------------------------------------------------------------------------
# public API: numpy in, numpy out
# ---------------------------------------------------------------------------


def composite(image: Any, alpha: Any, background: Any) -> np.ndarray:
    """Blend ``image`` over ``background``: ``out = image * alpha + background * (1 - alpha)``.

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
    """
    img = image if isinstance(image, np.ndarray) and image.ndim == 3 else load_image(image)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"image must be uint8 or float (0..255); got dtype {img.dtype}")
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    p = _person(a, soft=True, name="alpha")
    _check_same_size(img.shape, "image", tuple(p.shape), "alpha")
    c = img.shape[2]
    if is_color(background):
        rgba = parse_color(background, "background")
        if c not in (3, 4):
            raise ValueError(f"a colour background needs an image with 3 or 4 channels; got {c}")
        bg = torch.tensor(rgba[:c], dtype=torch.float32)
    else:
        bg_arr = background if isinstance(background, np.ndarray) and background.ndim == 3 else load_image(background)
        _check_same_size(img.shape, "image", bg_arr.shape, "background")
        if bg_arr.shape[2] != c:
            raise ValueError(f"image has {c} channels but background has {bg_arr.shape[2]}")
        if bg_arr.dtype != np.uint8 and not np.issubdtype(bg_arr.dtype, np.floating):
            raise TypeError(f"background must be uint8 or float (0..255); got dtype {bg_arr.dtype}")
        bg = _tensor(bg_arr)
    with torch.inference_mode():
        return _numpy(blend_t(_tensor(img), p, bg))


def to_mask(
    segmentation: SegmentationLike,
    foreground: Color = (0, 0, 0, 0),
    background: Color = (0, 0, 0, 255),
) -> np.ndarray:
    """Colour a segmentation: ``foreground`` on the person, ``background`` elsewhere (BodyPix ``toMask``).

    Parameters
    ----------
    segmentation : Segmentation or ndarray (H, W)
        A Segmentation's binary ``mask`` is used (as BodyPix does). A soft (float) array mixes
        the two colours in proportion (``p * foreground + (1 - p) * background`` per RGBA
        component).
    foreground, background : colour
        RGBA (or RGB = opaque) colours; defaults are BodyPix's transparent person on opaque black.

    Returns
    -------
    ndarray, shape (H, W, 4), uint8
        RGBA mask image, ready for :func:`draw_mask`.
    """
    p = _person(segmentation, soft=False)
    binary = isinstance(segmentation, Segmentation) or not np.issubdtype(np.asarray(segmentation).dtype, np.floating)
    fg = parse_color(foreground, "foreground")
    bg = parse_color(background, "background")
    with torch.inference_mode():
        return _numpy(to_mask_t(p, fg, bg, binary=binary))


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
    """
    img = load_image(image)
    mask = _mask_image(mask_image)
    _check_same_size(img.shape, "image", mask.shape, "mask_image")
    op = check_number(opacity, "opacity", 0.0, 1.0)
    blur = _amount(mask_blur_amount, "mask_blur_amount")
    with torch.inference_mode():
        return _numpy(draw_mask_t(_tensor(img), _tensor(mask), op, blur, bool(flip_horizontal)))


def draw_bokeh_effect(
    image: ImageLike,
    segmentation: SegmentationLike,
    background_blur_amount: float = 3,
    edge_blur_amount: float = 3,
    flip_horizontal: bool = False,
) -> np.ndarray:
    """Blur the background behind the person (BodyPix ``drawBokehEffect``).

    The background is blurred with a Gaussian of sigma ``background_blur_amount`` by
    normalised convolution with weight ``1 - person`` (:func:`bgkit.ops.filters.masked_blur`),
    so the person's colours do not bleed into it (no halo). The sharp image is then
    composited over it with the person's soft alpha, further softened by a Gaussian of sigma
    ``edge_blur_amount`` (BodyPix's defaults: 3 and 3).

    Parameters
    ----------
    image : image-like
        (H, W, 3) RGB once loaded.
    segmentation : Segmentation or ndarray (H, W)
        Person alpha or mask, same size as the image (see module docstring).
    background_blur_amount, edge_blur_amount : float
        Gaussian sigmas in pixels, 0..20.
    flip_horizontal : bool
        Mirror the output left-right.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8 RGB
    """
    img = load_image(image)
    p = _person(segmentation, soft=True)
    _check_same_size(img.shape, "image", tuple(p.shape), "segmentation")
    bb = _amount(background_blur_amount, "background_blur_amount")
    eb = _amount(edge_blur_amount, "edge_blur_amount")
    with torch.inference_mode():
        return _numpy(bokeh_t(_tensor(img), p, bb, eb, bool(flip_horizontal)))


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
        Person alpha or mask, same size as the image (see module docstring).
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
    p = _person(segmentation, soft=True)
    _check_same_size(img.shape, "image", tuple(p.shape), "segmentation")
    eb = _amount(edge_blur_amount, "edge_blur_amount")
    h, w = img.shape[:2]
    bg: Any = parse_color(background, "background") if is_color(background) else _tensor(cover(load_image(background), w, h))
    with torch.inference_mode():
        return _numpy(replace_t(_tensor(img), p, bg, eb, bool(flip_horizontal)))


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
        Person alpha or mask, same size as the image (see module docstring).
    edge_blur_amount : float
        Gaussian sigma in pixels that softens the alpha edge, 0..20 (0: alpha is exactly
        ``round(255 * person)``).
    flip_horizontal : bool
        Mirror the output left-right.

    Returns
    -------
    ndarray, shape (H, W, 4), uint8 RGBA
        RGB is ``image`` unchanged (not premultiplied); alpha = round(255 * person).
    """
    img = load_image(image)
    p = _person(segmentation, soft=True)
    _check_same_size(img.shape, "image", tuple(p.shape), "segmentation")
    eb = _amount(edge_blur_amount, "edge_blur_amount")
    with torch.inference_mode():
        return _numpy(cutout_t(_tensor(img), p, eb, bool(flip_horizontal)))
