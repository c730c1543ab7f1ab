"""The one data path: frame in -> segmentation -> compositing -> frame out.

Still images, video files and the live camera all call :func:`process_frame` (or
:func:`render` when they already have a segmentation) with an :class:`EffectSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import compositing
from .imageio import ImageLike, load_image
from .segmentation import InternalResolution, Segmentation
from .segmenter import Segmenter

EFFECTS = ("mask", "bokeh", "replace", "cutout")


@dataclass
class EffectSettings:
    """Every knob of the BodyPix demo, with its defaults.

    Attributes:
        effect: "mask" (coloured mask overlay), "bokeh" (blurred background), "replace"
            (background image or colour) or "cutout" (transparent background, RGBA out).
        internal_resolution: see :meth:`Segmenter.segment_person` (None = model default).
        threshold: segmentation threshold, 0..1.
        opacity: mask opacity for "mask", 0..1.
        mask_blur_amount: Gaussian sigma in pixels for the mask edge in "mask", 0..20.
        background_blur_amount: Gaussian sigma in pixels of the background in "bokeh", 0..20.
        edge_blur_amount: Gaussian sigma in pixels of the person edge ("bokeh", "replace", "cutout"), 0..20.
        foreground: RGBA colour (0..255) drawn over the person in "mask".
        background: RGBA colour (0..255) drawn over the background in "mask", and the
            replacement colour in "replace" when there is no ``background_image``.
        background_image: replacement picture for "replace" (any image :func:`load_image` takes).
        flip_horizontal: mirror the output left-right (webcam "mirror").
    """

    effect: str = "mask"
    internal_resolution: InternalResolution = None
    threshold: float = 0.7
    opacity: float = 0.7
    mask_blur_amount: float = 0.0
    background_blur_amount: float = 3.0
    edge_blur_amount: float = 3.0
    foreground: tuple[int, int, int, int] = (0, 0, 0, 0)
    background: tuple[int, int, int, int] = (0, 0, 0, 255)
    background_image: Any = field(default=None, repr=False)
    flip_horizontal: bool = False

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"effect must be one of {', '.join(EFFECTS)}; got {self.effect!r}")

    def updated(self, **changes: Any) -> "EffectSettings":
        """A copy with ``changes`` applied (validated)."""
        return replace(self, **changes)


def render(image: ImageLike, segmentation: Segmentation, settings: EffectSettings) -> np.ndarray:
    """Composite ``image`` with ``segmentation`` as ``settings`` say.

    Returns (H, W, 3) uint8 RGB, or (H, W, 4) uint8 RGBA for the "cutout" effect.
    """
    s = settings
    if s.effect == "mask":
        mask_image = compositing.to_mask(segmentation, foreground=s.foreground, background=s.background)
        return compositing.draw_mask(
            image, mask_image, opacity=s.opacity, mask_blur_amount=s.mask_blur_amount,
            flip_horizontal=s.flip_horizontal,
        )
    if s.effect == "bokeh":
        return compositing.draw_bokeh_effect(
            image, segmentation, background_blur_amount=s.background_blur_amount,
            edge_blur_amount=s.edge_blur_amount, flip_horizontal=s.flip_horizontal,
        )
    if s.effect == "replace":
        bg = s.background_image if s.background_image is not None else s.background
        return compositing.replace_background(
            image, segmentation, bg, edge_blur_amount=s.edge_blur_amount, flip_horizontal=s.flip_horizontal
        )
    return compositing.remove_background(
        image, segmentation, edge_blur_amount=s.edge_blur_amount, flip_horizontal=s.flip_horizontal
    )


def process_frame(
    image: ImageLike, segmenter: Segmenter, settings: EffectSettings
) -> tuple[np.ndarray, Segmentation]:
    """Segment ``image`` with ``segmenter`` and render it: returns (output picture, segmentation).

    The segmentation is computed unflipped; ``settings.flip_horizontal`` mirrors the output only.
    """
    rgb = load_image(image)
    seg = segmenter.segment_person(
        rgb, internal_resolution=settings.internal_resolution, segmentation_threshold=settings.threshold
    )
    return render(rgb, seg, settings), seg
