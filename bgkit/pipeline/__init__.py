"""The one data path: settings, and the pipeline that turns frames into pictures with them.

:class:`Pipeline` (stills) and :class:`Stream` (video, camera) in :mod:`bgkit.pipeline.pipeline`;
:class:`EffectSettings` and its schema in :mod:`bgkit.pipeline.settings` (which loads no torch,
so the command line's options are built before torch is imported).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "EFFECTS": "settings", "PART_EFFECTS": "settings", "SCHEMA": "settings", "EffectSettings": "settings",
    "Knob": "settings", "effects_for": "settings", "knob": "settings",
    "Pipeline": "pipeline", "Result": "pipeline", "Stream": "pipeline", "draw": "pipeline",
    "process_frame": "pipeline", "render": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bgkit.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Pipeline, Result, Stream, draw, process_frame, render
    from .settings import EFFECTS, PART_EFFECTS, SCHEMA, EffectSettings, Knob, effects_for, knob
