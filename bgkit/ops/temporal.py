"""Temporal smoothing of person segmentations in a stream (video file, live camera).

A per-frame segmenter decides every pixel afresh, so pixels near the threshold -- hair, hands,
a shadowy background person -- switch on and off from one frame to the next and the edge of
the cut-out "boils". :class:`TemporalSmoother` removes most of that with two classic tools:

1. an **exponential moving average** (EMA) of the person probability,
   ``p_t = p_{t-1} + w (new_t - p_{t-1})`` with ``w = ema`` (``ema`` = 1 turns it off). With a
   ``motion_gate`` the weight grows with the change, ``w = ema + (1 - ema) min(1, |new_t - p_{t-1}| /
   motion_gate)``: small wobbles (noise) are averaged, large changes (someone moved) pass at once,
   so the average does not trail behind a moving person; and
2. **hysteresis** on the averaged probability: a pixel turns *on* when it rises above
   ``threshold_on``, turns *off* when it falls below ``threshold_off``, and otherwise keeps the
   state it had in the previous frame. By default the band follows each segmentation's threshold
   ``t``: ``threshold_off = t (1 - hysteresis)``, ``threshold_on = t + (1 - t) hysteresis``.

The defaults (``ema=0.5, motion_gate=0.6, hysteresis=0.6``) were chosen on the DAVIS
``dance-twirl`` clip (fast twirl, panning camera, blinking audience) with the selfie model:
they cut the flicker by more than half and *raise* the IoU, where a plain EMA of 0.5 halves the
flicker only at a cost of 0.06 IoU (the mask trails the dancer). See ``notebooks/03_quality.ipynb``.

One smoother belongs to one stream (no global state); it resets itself when the frame size
changes and on :meth:`TemporalSmoother.reset`. Still images are never smoothed: use
:class:`bgkit.pipeline.FrameProcessor` for streams, :func:`bgkit.pipeline.process_frame` for
single pictures.

Example::

    smoother = TemporalSmoother()            # or TemporalSmoother(ema=0.3, hysteresis=0.4)
    for frame in frames:
        seg = smoother.update(segmenter.segment_person(frame))
"""

from __future__ import annotations

from typing import Any


import torch

from ..core.checks import check_number
from ..core.segmentation import Segmentation, soft_alpha
from ..core.segmentation import DEFAULT_EDGE_SOFTNESS
from .defaults import DEFAULT_EMA, DEFAULT_HYSTERESIS, DEFAULT_MOTION_GATE

__all__ = ["DEFAULT_EMA", "DEFAULT_HYSTERESIS", "DEFAULT_MOTION_GATE", "TemporalSmoother", "hysteresis_thresholds", "stream_alpha"]



def _unit(value: object, name: str, lo_open: bool = False, hi_open: bool = False) -> float:
    return check_number(value, name, 0.0, 1.0, lo_open=lo_open, hi_open=hi_open)


def hysteresis_thresholds(threshold: float, hysteresis: float) -> tuple[float, float]:
    """(threshold_on, threshold_off) for a segmentation ``threshold`` and a ``hysteresis`` in [0, 1).

    ``on = t + (1 - t) h`` and ``off = t (1 - h)``: the band reaches the same fraction of the way
    towards 1 and towards 0, so it suits any threshold; ``h = 0`` is a plain threshold.
    """
    t = float(threshold)
    h = float(hysteresis)
    return t + (1.0 - t) * h, t * (1.0 - h)


class TemporalSmoother:
    """Exponential moving average + hysteresis over a stream of :class:`Segmentation`.

    Args:
        ema: weight of the newest frame in the average, in (0, 1]; 1 = no averaging. Lower is
            steadier but, without a ``motion_gate``, lags behind fast motion (the average needs
            about ``1 / ema`` frames to catch up).
        motion_gate: probability change (0..1] at which a pixel takes the new value at once;
            changes below it are averaged in proportion. None or 0: a plain EMA.
        threshold_on: averaged probability above which an "off" pixel turns on.
        threshold_off: averaged probability below which an "on" pixel turns off
            (``threshold_off <= threshold_on``). Give both or neither.
        hysteresis: used when the thresholds are not given, in [0, 1): the band
            :func:`hysteresis_thresholds` around each segmentation's own threshold, so the
            smoother follows whatever threshold the user picks. 0 turns hysteresis off.

    :meth:`update` returns a new :class:`Segmentation` whose ``probabilities`` are the moving
    average and whose ``mask`` is the hysteresis state -- so inside the band ``mask`` is *not*
    simply ``probabilities > threshold``. Not thread safe: one stream, one caller at a time
    (:class:`bgkit.pipeline.FrameProcessor` holds a lock around it).
    """

    def __init__(
        self,
        ema: float = DEFAULT_EMA,
        threshold_on: float | None = None,
        threshold_off: float | None = None,
        hysteresis: float = DEFAULT_HYSTERESIS,
        motion_gate: float | None = DEFAULT_MOTION_GATE,
    ) -> None:
        self._avg: torch.Tensor | None = None
        self._state: torch.Tensor | None = None
        self.frames = 0
        self.ema = DEFAULT_EMA
        self.hysteresis = DEFAULT_HYSTERESIS
        self.motion_gate: float | None = DEFAULT_MOTION_GATE
        self.threshold_on: float | None = None
        self.threshold_off: float | None = None
        self.configure(ema=ema, threshold_on=threshold_on, threshold_off=threshold_off, hysteresis=hysteresis,
                       motion_gate=motion_gate)

    # -- parameters ------------------------------------------------------------------------------

    _KEEP = object()

    def configure(
        self,
        ema: float | None = None,
        threshold_on: float | None = None,
        threshold_off: float | None = None,
        hysteresis: float | None = None,
        motion_gate: Any = _KEEP,
    ) -> "TemporalSmoother":
        """Change parameters without losing the stream's state (for sliders). Returns ``self``.

        ``None`` keeps ``ema``/``hysteresis`` as they are; ``motion_gate`` is kept unless given
        (``None`` or 0 turns it off). ``threshold_on``/``threshold_off`` are always replaced:
        pass both, or neither to follow each segmentation's threshold with ``hysteresis``.
        """
        new_ema = self.ema if ema is None else _unit(ema, "ema", lo_open=True)
        new_h = self.hysteresis if hysteresis is None else _unit(hysteresis, "hysteresis", hi_open=True)
        if motion_gate is TemporalSmoother._KEEP:
            new_gate = self.motion_gate
        elif motion_gate is None or (not isinstance(motion_gate, bool) and motion_gate == 0):
            new_gate = None
        else:
            new_gate = _unit(motion_gate, "motion_gate", lo_open=True)
        if (threshold_on is None) != (threshold_off is None):
            raise ValueError("give both threshold_on and threshold_off, or neither")
        if threshold_on is not None:
            on = _unit(threshold_on, "threshold_on")
            off = _unit(threshold_off, "threshold_off")
            if off > on:
                raise ValueError(f"threshold_off ({off:g}) must not be above threshold_on ({on:g})")
        else:
            on = off = None  # type: ignore[assignment]
        self.threshold_on, self.threshold_off = on, off
        self.ema, self.hysteresis, self.motion_gate = new_ema, new_h, new_gate
        return self

    def thresholds(self, threshold: float) -> tuple[float, float]:
        """(on, off) used for a segmentation made with ``threshold``."""
        if self.threshold_on is not None and self.threshold_off is not None:
            return self.threshold_on, self.threshold_off
        return hysteresis_thresholds(threshold, self.hysteresis)

    def __repr__(self) -> str:
        if self.threshold_on is not None:
            band = f"threshold_on={self.threshold_on:g}, threshold_off={self.threshold_off:g}"
        else:
            band = f"hysteresis={self.hysteresis:g}"
        return f"TemporalSmoother(ema={self.ema:g}, motion_gate={self.motion_gate}, {band}; {self.frames} frames)"

    # -- state -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the stream (the next frame starts afresh), e.g. at a scene cut or a new video."""
        self._avg = None
        self._state = None
        self._threshold: float | None = None
        self.frames = 0

    @property
    def shape(self) -> tuple[int, int] | None:
        """(height, width) of the stream being smoothed, or None before the first frame."""
        return None if self._avg is None else (int(self._avg.shape[0]), int(self._avg.shape[1]))

    def step(self, probabilities: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold the next frame's (H, W) probability tensor in: returns (averaged probability,
        bool on/off state), both (H, W) tensors on its device (fresh: the smoother keeps its own).

        The first frame (and the first after a reset or a change of frame size) passes through
        unchanged: its average is its probability and its state ``probability > threshold``.
        When ``threshold`` differs from the previous frame's, the on/off state restarts from it
        (the average is kept), so moving a threshold slider takes effect at once.
        """
        probs = probabilities.float()
        if self._avg is not None and (self._avg.shape != probs.shape or self._avg.device != probs.device):
            self.reset()
        on_t, off_t = self.thresholds(threshold)
        if self._avg is None:
            avg = probs.clone()
            state = probs > threshold
        else:
            avg = self._avg
            if self.ema < 1.0:
                # avg <- avg + w (new - avg), w = ema, or ema + (1 - ema) min(1, |new - avg| / gate)
                diff = torch.sub(probs, avg)
                if self.motion_gate:
                    w = diff.abs().mul_((1.0 - self.ema) / self.motion_gate).add_(self.ema).clamp_(max=1.0)
                    diff.mul_(w)
                else:
                    diff.mul_(self.ema)
                avg.add_(diff)
            else:
                avg.copy_(probs)
            state = self._state  # type: ignore[assignment]
            if threshold != self._threshold:
                state = avg > threshold  # a new threshold (a slider moved) applies at once
        state |= avg > on_t
        state &= avg >= off_t
        self._avg, self._state, self._threshold = avg, state, threshold
        self.frames += 1
        return avg.clone(), state.clone()

    def update(self, segmentation: Segmentation) -> Segmentation:
        """Fold the next frame's segmentation in; returns the smoothed segmentation.

        Its ``probabilities`` are the moving average, its ``mask`` the hysteresis state and its
        ``alpha`` the averaged probability's soft edge, kept on the side of the state (see
        :meth:`step` for the first frame and threshold changes).
        """
        if not isinstance(segmentation, Segmentation):
            raise TypeError(f"update() takes a bgkit Segmentation; got {type(segmentation).__name__}")
        avg, state = self.step(segmentation.tensor("probabilities"), segmentation.threshold)
        return segmentation.replace(probabilities=avg, mask=state, alpha=stream_alpha(avg, state, segmentation.threshold))


def stream_alpha(average: torch.Tensor, state: torch.Tensor, threshold: float,
                 softness: float = DEFAULT_EDGE_SOFTNESS) -> torch.Tensor:
    """The soft alpha of a smoothed stream: the averaged probability's anti-aliased edge
    (:func:`bgkit.soft_alpha`), kept on the side of 0.5 that the hysteresis state says, so
    ``alpha > 0.5`` exactly where the mask is 1."""
    return soft_alpha(average, threshold, softness, mask=state)
