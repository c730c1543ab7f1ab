"""Defaults and limits of the image operations, in a module without torch, so the settings
schema (and the command line's ``--help``) can read them without loading torch.

The operations re-export them: :mod:`bgkit.ops.refine`, :mod:`bgkit.ops.temporal`,
:mod:`bgkit.ops.compositing`.
"""

from __future__ import annotations

__all__ = ["DEFAULT_EMA", "DEFAULT_EPS", "DEFAULT_HYSTERESIS", "DEFAULT_MOTION_GATE", "DEFAULT_RADIUS", "MAX_BLUR"]

#: Largest accepted blur amount (pixels), as in the BodyPix demo's sliders.
MAX_BLUR = 20.0

#: Edge refinement: default regulariser (colour variance in 0..1 units): windows flatter than this
#: are averaged.
DEFAULT_EPS = 1e-4
#: Edge refinement: default window radius, in pixels of the *model's* input (the guided filter's
#: coefficients are computed on the grid the model saw).
DEFAULT_RADIUS = 2.0

#: Temporal smoothing: default weight of the newest frame in the moving average.
DEFAULT_EMA = 0.5
#: Temporal smoothing: default probability change at which a pixel bypasses the average.
DEFAULT_MOTION_GATE = 0.6
#: Temporal smoothing: default hysteresis, how far (as a fraction of the way to 0 and to 1) the off
#: and on thresholds lie from the segmentation threshold.
DEFAULT_HYSTERESIS = 0.6
