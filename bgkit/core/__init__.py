"""The core data types every layer shares: segmentations, colours, argument checks, optional packages."""

from .colors import Color, parse_color
from .deps import MissingDependencyError
from .segmentation import INTERNAL_RESOLUTIONS, InternalResolution, Segmentation, resolve_internal_resolution, soft_alpha

__all__ = [
    "Color", "INTERNAL_RESOLUTIONS", "InternalResolution", "MissingDependencyError", "Segmentation", "parse_color",
    "resolve_internal_resolution", "soft_alpha",
]
