"""bgkit: remove, blur or replace the background behind a person, in photos, videos and live webcam.

A PyTorch port of the TensorFlow.js BodyPix demo API::

    import bgkit
    seg = bgkit.load_segmenter("auto")
    s = seg.segment_person("photo.jpg", internal_resolution="medium")
    overlay = bgkit.draw_mask("photo.jpg", bgkit.to_mask(s), opacity=0.7)
"""

from __future__ import annotations

from . import _process  # noqa: F401  (before torch loads: see bgkit/_process.py)
from .compositing import (
    composite,
    draw_bokeh_effect,
    draw_mask,
    parse_color,
    remove_background,
    replace_background,
    to_mask,
)
from .imageio import ImageError, load_image, save_image
from .models.registry import ModelSpec, WeightsUnavailableError, available_models, get_spec, list_models, register
from .pipeline import EFFECTS, EffectSettings, FrameProcessor, process_frame, render, segment_frame
from .refine import guided_filter, refine_segmentation
from .segmentation import INTERNAL_RESOLUTIONS, Segmentation, resolve_internal_resolution
from .segmenter import Segmenter, load_segmenter
from .temporal import TemporalSmoother
from .video import VideoError, process_video

__version__ = "0.1.0"

__all__ = [
    "EFFECTS",
    "EffectSettings",
    "FrameProcessor",
    "INTERNAL_RESOLUTIONS",
    "ImageError",
    "ModelSpec",
    "Segmentation",
    "Segmenter",
    "TemporalSmoother",
    "VideoError",
    "WeightsUnavailableError",
    "available_models",
    "composite",
    "draw_bokeh_effect",
    "draw_mask",
    "get_spec",
    "guided_filter",
    "list_models",
    "load_image",
    "load_segmenter",
    "parse_color",
    "process_frame",
    "process_video",
    "refine_segmentation",
    "register",
    "remove_background",
    "render",
    "replace_background",
    "resolve_internal_resolution",
    "save_image",
    "segment_frame",
    "to_mask",
]
