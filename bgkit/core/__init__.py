"""The core data types every layer shares: segmentations, settings, colours and argument checks."""

from .colors import Color, parse_color
from .deps import MissingDependencyError
from .segmentation import INTERNAL_RESOLUTIONS, InternalResolution, Segmentation, resolve_internal_resolution, soft_alpha
from .settings import EFFECTS, SCHEMA, EffectSettings, Knob

__all__ = [
    "Color", "EFFECTS", "EffectSettings", "INTERNAL_RESOLUTIONS", "InternalResolution", "Knob", "MissingDependencyError",
    "SCHEMA", "Segmentation", "parse_color", "resolve_internal_resolution", "soft_alpha",
]
