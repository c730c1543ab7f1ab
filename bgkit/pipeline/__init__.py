"""The one data path: settings, and the pipeline that turns frames into pictures with them.

:class:`Pipeline` (stills) and :class:`Stream` (video, camera) in :mod:`bgkit.pipeline.pipeline`;
:class:`EffectSettings` and its schema in :mod:`bgkit.pipeline.settings`.
"""

from .pipeline import Pipeline, Result, Stream, draw, process_frame, render
from .settings import EFFECTS, SCHEMA, EffectSettings, Knob, knob

__all__ = ["EFFECTS", "SCHEMA", "EffectSettings", "Knob", "Pipeline", "Result", "Stream", "draw", "knob", "process_frame",
           "render"]
