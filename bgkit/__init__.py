"""bgkit: remove, blur or replace the background behind a person, in photos, videos and the live webcam.

A PyTorch port of the TensorFlow.js BodyPix demo, around one pipeline::

    import bgkit
    pipe = bgkit.Pipeline(bgkit.load_segmenter("selfie"), effect="bokeh")
    picture = pipe.process("photo.jpg").picture          # (H, W, 3) uint8 RGB

and BodyPix's own API::

    seg = pipe.segmenter.segment_person("photo.jpg", internal_resolution="medium")
    overlay = bgkit.draw_mask("photo.jpg", bgkit.to_mask(seg), opacity=0.7)

Layers (each a sub-package, each importing only the ones above it in this list):
``core`` (segmentations, settings, colours), ``io`` (images, video, safe outputs),
``ops`` (blurs, compositing, edge refinement, temporal smoothing), ``models`` (registry,
segmenters, weights, backends), ``pipeline`` (settings and the one data path), then the applications:
``jobs`` (video files, batches), ``live`` (the webcam widget), ``widgets`` (notebook
controls), ``eval`` (metrics, figures, benchmarks) and ``cli``.

``import bgkit`` is cheap and changes nothing in the host process: the names below are
loaded on first use, and process tuning is an explicit call (:func:`bgkit.tune_process`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Color": "bgkit.core.colors",
    "parse_color": "bgkit.core.colors",
    "MissingDependencyError": "bgkit.core.deps",
    "INTERNAL_RESOLUTIONS": "bgkit.core.segmentation",
    "Segmentation": "bgkit.core.segmentation",
    "resolve_internal_resolution": "bgkit.core.segmentation",
    "soft_alpha": "bgkit.core.segmentation",
    "EFFECTS": "bgkit.pipeline.settings",
    "effects_for": "bgkit.pipeline.settings",
    "SCHEMA": "bgkit.pipeline.settings",
    "EffectSettings": "bgkit.pipeline.settings",
    "ImageError": "bgkit.io.images",
    "load_image": "bgkit.io.images",
    "save_image": "bgkit.io.images",
    "OutputError": "bgkit.io.outputs",
    "MemoryBudgetError": "bgkit.pipeline.pipeline",
    "VideoError": "bgkit.io.video",
    "composite": "bgkit.ops.compositing",
    "draw_bokeh_effect": "bgkit.ops.compositing",
    "draw_mask": "bgkit.ops.compositing",
    "remove_background": "bgkit.ops.compositing",
    "replace_background": "bgkit.ops.compositing",
    "to_mask": "bgkit.ops.compositing",
    "gaussian_blur": "bgkit.ops.filters",
    "FACE_PART_IDS": "bgkit.ops.parts",
    "PART_CHANNELS": "bgkit.ops.parts",
    "RAINBOW_PART_COLORS": "bgkit.ops.parts",
    "blur_body_part": "bgkit.ops.parts",
    "draw_pixelated_mask": "bgkit.ops.parts",
    "to_colored_part_mask": "bgkit.ops.parts",
    "guided_filter": "bgkit.ops.refine",
    "refine_segmentation": "bgkit.ops.refine",
    "TemporalSmoother": "bgkit.ops.temporal",
    "ModelSpec": "bgkit.models.registry",
    "WeightsUnavailableError": "bgkit.models.registry",
    "available_models": "bgkit.models.registry",
    "get_spec": "bgkit.models.registry",
    "list_models": "bgkit.models.registry",
    "register": "bgkit.models.registry",
    "Segmenter": "bgkit.models.segmenter",
    "load_segmenter": "bgkit.models.segmenter",
    "Pipeline": "bgkit.pipeline.pipeline",
    "Result": "bgkit.pipeline.pipeline",
    "Stream": "bgkit.pipeline.pipeline",
    "process_frame": "bgkit.pipeline.pipeline",
    "process_video": "bgkit.jobs.video",
    "tune_process": "bgkit.tuning",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bgkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if __import__("os").environ.get("BGKIT_PROCESS_TUNING", "").strip() not in ("", "0"):
    from .tuning import tune_process as _tune

    _tune()  # opted in by the environment (see bgkit.tuning)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .core.colors import Color, parse_color
    from .core.deps import MissingDependencyError
    from .core.segmentation import INTERNAL_RESOLUTIONS, Segmentation, resolve_internal_resolution, soft_alpha
    from .io.images import ImageError, load_image, save_image
    from .io.outputs import OutputError
    from .io.video import VideoError
    from .jobs.video import process_video
    from .models.registry import ModelSpec, WeightsUnavailableError, available_models, get_spec, list_models, register
    from .models.segmenter import Segmenter, load_segmenter
    from .ops.compositing import (composite, draw_bokeh_effect, draw_mask, remove_background, replace_background,
                                  to_mask)
    from .ops.filters import gaussian_blur
    from .ops.parts import (FACE_PART_IDS, PART_CHANNELS, RAINBOW_PART_COLORS, blur_body_part, draw_pixelated_mask,
                            to_colored_part_mask)
    from .ops.refine import guided_filter, refine_segmentation
    from .ops.temporal import TemporalSmoother
    from .pipeline.pipeline import MemoryBudgetError, Pipeline, Result, Stream, process_frame
    from .pipeline.settings import EFFECTS, SCHEMA, EffectSettings, effects_for
    from .tuning import tune_process
