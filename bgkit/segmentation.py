"""The result of person segmentation, and the BodyPix ``internalResolution`` rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

InternalResolution = Union[str, float, None]

#: BodyPix's named internal resolutions: the factor the input is scaled by before the model.
INTERNAL_RESOLUTIONS: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 0.75, "full": 1.0}


def resolve_internal_resolution(value: str | float) -> float:
    """Return the scale factor for ``value``: a name in ``INTERNAL_RESOLUTIONS`` or a number in (0, 2]."""
    if isinstance(value, str):
        try:
            return INTERNAL_RESOLUTIONS[value.lower()]
        except KeyError:
            names = ", ".join(repr(k) for k in INTERNAL_RESOLUTIONS)
            raise ValueError(
                f"internal_resolution must be one of {names} or a number in (0, 2]; got {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"internal_resolution must be a string or a number, not {type(value).__name__}")
    scale = float(value)
    if not (0.0 < scale <= 2.0) or not np.isfinite(scale):
        raise ValueError(f"internal_resolution must be in (0, 2]; got {value!r}")
    return scale


@dataclass(frozen=True)
class Segmentation:
    """A person segmentation of one image, like BodyPix's ``{width, height, data}``.

    Attributes:
        width, height: size of the segmented image in pixels.
        probabilities: float32 array (height, width), person probability in 0..1.
        mask: uint8 array (height, width), 1 where ``probabilities > threshold``, else 0.
        threshold: the segmentation threshold used to make ``mask`` (0..1).
        model: name of the model that produced it.
        model_input_size: (width, height) in pixels of the tensor the model saw.
        elapsed_ms: wall time of the ``segment_person`` call in milliseconds.
    """

    width: int
    height: int
    probabilities: np.ndarray
    mask: np.ndarray
    threshold: float = 0.7
    model: str = ""
    model_input_size: tuple[int, int] = (0, 0)
    elapsed_ms: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        shape = (self.height, self.width)
        if self.probabilities.shape != shape or self.mask.shape != shape:
            raise ValueError(
                f"probabilities {self.probabilities.shape} and mask {self.mask.shape} must both be {shape}"
            )

    @property
    def data(self) -> np.ndarray:
        """The mask, under BodyPix's name (uint8, 0/1, shape (height, width))."""
        return self.mask

    @classmethod
    def from_probabilities(
        cls, probabilities: np.ndarray, threshold: float = 0.7, **kwargs: object
    ) -> "Segmentation":
        """Build a segmentation from a (H, W) probability map in 0..1, thresholding it at ``threshold``."""
        probs = np.ascontiguousarray(probabilities, dtype=np.float32)
        if probs.ndim != 2:
            raise ValueError(f"probabilities must be a 2-D (height, width) array; got shape {probs.shape}")
        mask = (probs > threshold).astype(np.uint8)
        return cls(width=probs.shape[1], height=probs.shape[0], probabilities=probs, mask=mask,
                   threshold=float(threshold), **kwargs)  # type: ignore[arg-type]
