"""Compositing in the page: the kernel sends the person's matte, the page draws the effect.

For the four effects of the BodyPix demo ("mask", "bokeh", "replace", "cutout") the live loop
does not send pictures back: the page sends the frame at the size the model works at, the kernel
runs the pipeline's stream on it (model, refinement, smoothing, soft alpha) and answers with the
alpha matte, one byte per pixel (a 256x256 matte is 64 kB, where a 640x480 picture is 1.2 MB of
pixels to composite, encode, send and decode). The page scales the matte up to the camera's
picture, which it already has, and composites there (``composeMatte`` in ``widget.js``).

There is still one definition of each effect: :func:`compose_matte` is what the page must draw,
written with the pipeline's own :func:`bgkit.pipeline.draw` (the matte scaled up bilinearly, then
drawn as any segmentation is), and a browser test holds the page's picture to it.

The matte's bytes keep the mask exact: ``round(255 * alpha)``, but at least 128 where the mask is
on and at most 127 where it is off, so the page's mask is ``byte >= 128``, as ``alpha > 0.5`` is
the pipeline's (scaled up: ``255 * alpha >= 127.5``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.colors import parse_color
from ..core.segmentation import Segmentation
from ..pipeline import draw
from ..pipeline.settings import EffectSettings

__all__ = ["MATTE_EFFECTS", "compose_matte", "encode_matte", "image_id", "look", "look_settings", "page_can_compose",
           "upsample_matte"]

#: The effects the page composites itself (the body-part effects are drawn by the kernel).
MATTE_EFFECTS = ("mask", "bokeh", "replace", "cutout")


def page_can_compose(settings: EffectSettings, segmentation: Segmentation | None = None) -> bool:
    """True when the page can draw ``settings`` from the matte alone: one of :data:`MATTE_EFFECTS`,
    and no model-predicted foreground colours to draw with (a matting model's replace/cut-out)."""
    if settings.effect not in MATTE_EFFECTS:
        return False
    if segmentation is not None and segmentation.has_foreground and settings.effect in ("replace", "cutout"):
        return False
    return True


def encode_matte(segmentation: Segmentation) -> np.ndarray:
    """The (h, w) uint8 matte of a segmentation: ``round(255 * alpha)``, at least 128 on the mask
    and at most 127 off it (so ``byte >= 128`` is the mask)."""
    alpha = segmentation.tensor("alpha").float()
    mask = segmentation.tensor("mask").bool()
    a = alpha.mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
    a = torch.where(mask, a.clamp(min=128), a.clamp(max=127))
    return np.ascontiguousarray(a.cpu().numpy())


def upsample_matte(matte: np.ndarray, height: int, width: int) -> torch.Tensor:
    """A (h, w) uint8 matte scaled to (height, width) bilinearly (pixel centres aligned, edges
    clamped: ``align_corners=False``), in byte units 0..255 (float32)."""
    t = torch.from_numpy(np.ascontiguousarray(matte)).float()[None, None]
    if t.shape[-2:] != (height, width):
        t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)
    return t[0, 0]


def compose_matte(frame: np.ndarray, matte: np.ndarray, settings: EffectSettings,
                  background: np.ndarray | None = None) -> np.ndarray:
    """What the page draws for ``frame`` (H, W, 3 uint8 RGB, the camera's picture) with a matte
    from the kernel ((h, w) uint8, see :func:`encode_matte`) and ``settings``: the pipeline's
    drawing of the segmentation whose alpha is the matte scaled up to H x W (mask: ``>= 127.5``).

    ``background``: the "replace" picture already scaled to cover the frame (None: from
    ``settings.background_image``, or the colour). Returns (H, W, 3) RGB, or (H, W, 4) for "cutout".
    """
    if settings.effect not in MATTE_EFFECTS:
        raise ValueError(f"the page composites only {', '.join(MATTE_EFFECTS)}; got effect {settings.effect!r}")
    h, w = frame.shape[:2]
    up = upsample_matte(matte, h, w)
    alpha = up.div(255.0).clamp_(0.0, 1.0)
    seg = Segmentation(alpha, up >= 127.5, alpha, threshold=0.5, model="matte")
    bg = None if background is None else torch.from_numpy(np.array(background[:, :, :3], np.uint8))  # a copy: may be read-only
    return draw(torch.from_numpy(np.array(frame, np.uint8)), seg, settings, bg)


def image_id(image: np.ndarray) -> str:
    """A short content hash of a picture (the page caches the replacement picture by it)."""
    h = hashlib.sha1()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()[:16]


def look(settings: EffectSettings, background_id: str | None = None) -> dict[str, Any]:
    """The settings the page composites with, as JSON: effect, opacity, RGBA colours, blur
    amounts (px), whether to mirror, and the id of the replacement picture (None: a colour)."""
    return {
        "effect": settings.effect,
        "opacity": float(settings.opacity),
        "foreground": list(parse_color(settings.foreground)),
        "background": list(parse_color(settings.background)),
        "mask_blur_amount": float(settings.mask_blur_amount),
        "background_blur_amount": float(settings.background_blur_amount),
        "edge_blur_amount": float(settings.edge_blur_amount),
        "flip_horizontal": bool(settings.flip_horizontal),
        "background_image": background_id if settings.effect == "replace" else None,
    }


def look_settings(look_: dict[str, Any]) -> EffectSettings:
    """The :class:`EffectSettings` a :func:`look` describes (what the page composites with)."""
    return EffectSettings(
        effect=look_["effect"], opacity=look_["opacity"], foreground=tuple(look_["foreground"]),
        background=tuple(look_["background"]), mask_blur_amount=look_["mask_blur_amount"],
        background_blur_amount=look_["background_blur_amount"], edge_blur_amount=look_["edge_blur_amount"],
        flip_horizontal=look_["flip_horizontal"],
    )
