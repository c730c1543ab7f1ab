"""bgkit: remove, blur or replace the background behind a person, in photos, videos and live webcam.

A PyTorch port of the TensorFlow.js BodyPix demo API::

    import bgkit
    seg = bgkit.load_segmenter("auto")
    s = seg.segment_person("photo.jpg", internal_resolution="medium")
    overlay = bgkit.draw_mask("photo.jpg", bgkit.to_mask(s), opacity=0.7)
"""

from __future__ import annotations

from .imageio import ImageError, load_image, save_image
from .models.registry import ModelSpec, WeightsUnavailableError, available_models, get_spec, list_models, register
from .segmentation import INTERNAL_RESOLUTIONS, Segmentation, resolve_internal_resolution
from .segmenter import Segmenter, load_segmenter

__version__ = "0.1.0"

__all__ = [
    "INTERNAL_RESOLUTIONS",
    "ImageError",
    "ModelSpec",
    "Segmentation",
    "Segmenter",
    "WeightsUnavailableError",
    "available_models",
    "get_spec",
    "list_models",
    "load_image",
    "load_segmenter",
    "register",
    "resolve_internal_resolution",
    "save_image",
]
