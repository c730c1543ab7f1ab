"""The one data path: frame in -> segmentation (probability, soft alpha, mask) -> compositing -> frame out.

Every entry point makes its pictures here: the still explorer, the figures, ``bgkit demo``,
``bgkit effect``, ``bgkit video``, batches, the live camera and the notebooks::

    import bgkit
    pipe = bgkit.Pipeline(bgkit.load_segmenter("selfie"), effect="bokeh", background_blur_amount=8)
    result = pipe.process("photo.jpg")        # a still: result.picture, result.segmentation
    stream = pipe.stream()                    # a video or a camera: temporal state per stream
    for frame in frames:
        picture = stream.process(frame).picture

A frame is converted once, at the edge (:func:`bgkit.load_image`, then one tensor on the
model's device), and the same tensor flows through the model, the edge refinement
(:func:`bgkit.ops.refine.refine_t`), the temporal smoothing (streams only,
:class:`bgkit.TemporalSmoother`) and the compositing (:mod:`bgkit.ops.compositing`'s torch
cores), so on a GPU everything runs there; on a CPU with numba the full-size per-pixel stages
run as fused kernels (:mod:`bgkit.ops.kernels`, the same formulas). Bokeh, replace and cut-out
blend with the soft alpha; the mask effect draws the binary mask, as BodyPix's
``toMask``/``drawMask`` do.

Settings (:class:`bgkit.EffectSettings`) may change between frames (``pipe.settings = ...`` or
:meth:`Pipeline.update`, e.g. from sliders); each frame reads them once. A :class:`Stream`
keeps the state of one stream -- the smoother's history and a recurrent model's state -- and
starts afresh when the model or the frame size changes, or on :meth:`Stream.reset`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..core.frames import float01, frame_u8_tensor
from ..core.segmentation import Segmentation, soft_alpha
from ..io.images import ImageLike, load_image
from ..models.segmenter import ModelOutput, Segmenter, frame_inputs
from ..ops.compositing import bokeh_t, cover, cutout_t, draw_two_colour_mask_t, replace_t
from ..ops.people import keep_only, main_person
from ..ops import kernels
from ..ops.refine import refine_t
from ..ops.temporal import TemporalSmoother, stream_alpha
from .settings import PART_EFFECTS, EffectSettings

__all__ = ["MAX_PIXELS", "MemoryBudgetError", "Pipeline", "Result", "Stream", "check_memory", "draw", "process_frame",
           "render"]

#: Largest frame processed by default (pixels): 64 MP. ``BGKIT_MAX_PIXELS`` or ``max_pixels=`` change it.
MAX_PIXELS = 64_000_000
#: Peak memory per pixel of a frame, bytes, by effect (measured on an 8000x6000 photo: bokeh and a
#: blurred mask blur a float copy of the picture; the others only blend).
BYTES_PER_PIXEL = {"blur": 120, "blend": 56}
#: Frames that need less than this are not checked against the memory available (reading it costs
#: 0.1-0.2 ms, a camera frame of 640x480 needs about 35 MiB).
CHECK_AVAILABLE_ABOVE = 256 << 20


class MemoryBudgetError(ValueError):
    """A frame too big for the memory budget (the message names the limit and how to change it)."""


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(height: int, width: int, settings: EffectSettings, max_pixels: int | None = None) -> None:
    """Refuse a ``height`` x ``width`` frame that would not fit: above ``max_pixels`` (default
    ``$BGKIT_MAX_PIXELS`` or :data:`MAX_PIXELS`), or needing more than 70 % of the memory available
    now (Linux; frames needing under :data:`CHECK_AVAILABLE_ABOVE` are not checked), with a
    :class:`MemoryBudgetError` that says how much, and what to change."""
    import os

    limit = max_pixels if max_pixels is not None else int(os.environ.get("BGKIT_MAX_PIXELS") or MAX_PIXELS)
    pixels = height * width
    mp = f"{width}x{height} ({pixels / 1e6:.1f} MP)"
    if pixels > limit:
        raise MemoryBudgetError(
            f"the picture is {mp}, above the limit of {limit / 1e6:.0f} MP; downscale it, or raise the limit "
            "(Pipeline(..., max_pixels=N) or BGKIT_MAX_PIXELS=N) if the memory is there"
        )
    blurs = settings.effect == "bokeh" or (settings.effect == "mask" and settings.mask_blur_amount > 0)
    need = pixels * BYTES_PER_PIXEL["blur" if blurs else "blend"]
    if need < CHECK_AVAILABLE_ABOVE:
        return
    available = _available_bytes()
    if max_pixels is None and available is not None and need > 0.7 * available:
        raise MemoryBudgetError(
            f"the picture is {mp}: the {settings.effect} effect needs about {need / 2**30:.1f} GiB for it, but only "
            f"{available / 2**30:.1f} GiB of memory is available; downscale it, or pass max_pixels= (or set "
            "BGKIT_MAX_PIXELS) to try anyway"
        )


class Result(NamedTuple):
    """One processed frame: ``picture`` ((H, W, 3) RGB, or (H, W, 4) RGBA for "cutout", uint8)
    and the ``segmentation`` it was made from (its ``timings`` say where the time went)."""

    picture: np.ndarray
    segmentation: Segmentation


def _check_segmenter(segmenter: Any) -> Segmenter:
    if not isinstance(segmenter, Segmenter):
        raise TypeError(f"segmenter must be a bgkit Segmenter (see bgkit.load_segmenter); got {type(segmenter).__name__}")
    return segmenter


def _check_settings(settings: Any) -> EffectSettings:
    if not isinstance(settings, EffectSettings):
        raise TypeError(f"settings must be a bgkit.EffectSettings; got {type(settings).__name__}")
    return settings


class Pipeline:
    """A segmenter and the settings to draw with: the one way bgkit turns a frame into a picture.

    Args:
        segmenter: a loaded :class:`bgkit.Segmenter` (see :func:`bgkit.load_segmenter`).
        settings: an :class:`bgkit.EffectSettings` (default ``EffectSettings()``).
        max_pixels: the largest frame to process (see :func:`check_memory`; None: the default
            limit, and a check against the memory available).
        **changes: settings to change from ``settings`` (validated), e.g. ``effect="bokeh"``.

    :meth:`process` makes a still (no temporal smoothing, a fresh model state); :meth:`stream`
    gives a :class:`Stream` for the frames of one video or camera. Thread safe: settings and the
    segmenter are swapped atomically; each frame uses one consistent pair.
    """

    def __init__(self, segmenter: Segmenter, settings: EffectSettings | None = None, *,
                 max_pixels: int | None = None, **changes: Any) -> None:
        self._segmenter = _check_segmenter(segmenter)
        self.max_pixels = max_pixels
        base = _check_settings(settings) if settings is not None else EffectSettings()
        self._settings = base.updated(**changes) if changes else base
        self._backgrounds: dict[tuple[int, int, int, str], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"Pipeline({self._segmenter!r}, effect={self._settings.effect!r})"

    # -- state ---------------------------------------------------------------------------------

    @property
    def segmenter(self) -> Segmenter:
        return self._segmenter

    @segmenter.setter
    def segmenter(self, segmenter: Segmenter) -> None:
        self._segmenter = _check_segmenter(segmenter)

    @property
    def settings(self) -> EffectSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: EffectSettings) -> None:
        self._settings = _check_settings(settings)

    def update(self, **changes: Any) -> EffectSettings:
        """Change some settings (validated; from the next frame on). Returns the new settings."""
        self._settings = self._settings.updated(**changes)
        return self._settings

    def threshold(self, settings: EffectSettings | None = None) -> float:
        """The segmentation threshold in effect: the settings', or the model's default."""
        s = settings or self._settings
        return self._segmenter.default_threshold if s.segmentation_threshold is None else s.segmentation_threshold

    # -- stills --------------------------------------------------------------------------------

    def process(self, image: ImageLike) -> Result:
        """Segment ``image`` and draw it with the current settings: a still (edge refinement as
        the settings say; no temporal smoothing; a recurrent model starts from a fresh state)."""
        rgb = load_image(image)
        segmenter, settings = self._segmenter, self._settings
        check_memory(*rgb.shape[:2], settings, self.max_pixels)
        with torch.inference_mode():
            frame, frame01 = frame_inputs(rgb, segmenter)
            seg = self._segment(segmenter, settings, frame01, segmenter.initial_state(), None, frame)[0]
            return Result(self._draw(frame, seg, settings), seg)

    def segment(self, image: ImageLike) -> Segmentation:
        """The segmentation :meth:`process` draws with (same model, refinement and threshold)."""
        rgb = load_image(image)
        segmenter, settings = self._segmenter, self._settings
        check_memory(*rgb.shape[:2], settings, self.max_pixels)
        with torch.inference_mode():
            frame, frame01 = frame_inputs(rgb, segmenter)
            return self._segment(segmenter, settings, frame01, segmenter.initial_state(), None, frame)[0]

    def render(self, image: ImageLike, segmentation: Segmentation, settings: EffectSettings | None = None) -> np.ndarray:
        """Draw ``image`` with a segmentation made earlier (e.g. to try effects without running the
        model again): the same compositing as :meth:`process`, with ``settings`` (default: the
        pipeline's). The segmentation's threshold and alpha are used as they are."""
        if not isinstance(segmentation, Segmentation):
            raise TypeError(f"segmentation must be a bgkit Segmentation; got {type(segmentation).__name__}")
        s = _check_settings(settings) if settings is not None else self._settings
        rgb = load_image(image)
        if rgb.shape[:2] != (segmentation.height, segmentation.width):
            raise ValueError(f"size mismatch: image is {rgb.shape[1]}x{rgb.shape[0]} but the segmentation is "
                             f"{segmentation.width}x{segmentation.height}")
        with torch.inference_mode():
            frame = frame_u8_tensor(rgb, self._segmenter.device)
            return self._draw(frame, segmentation, s)

    def stream(self) -> "Stream":
        """A new :class:`Stream` (a video file, a camera) drawn by this pipeline."""
        return Stream(self)

    # -- the data path ---------------------------------------------------------------------------

    def _segment(
        self, segmenter: Segmenter, s: EffectSettings, frame01: torch.Tensor | None, state: Any,
        smoother: TemporalSmoother | None, frame: torch.Tensor,
    ) -> tuple[Segmentation, Any]:
        """Model -> refinement -> (stream: smoothing) -> probability, alpha and mask. ``frame`` is
        the (H, W, 3) uint8 frame tensor, ``frame01`` the same as :func:`frame_inputs` gives it
        (None for a segmenter that takes ``frame_u8``)."""
        t0 = time.perf_counter()
        extra = {}
        if s.effect in PART_EFFECTS:
            if not segmenter.has_parts:
                raise ValueError(f"the {s.effect!r} effect needs the body parts, which model {segmenter.name!r} does "
                                 "not give; use a model with a body-part head (bodypix, bodypix_050, ...)")
            extra["parts"] = True
        if s.people != "all" and segmenter.has_instances:
            extra["instances"] = True
        if frame01 is None:
            extra["frame_u8"] = frame
        out: ModelOutput = segmenter.infer(frame01, s.internal_resolution, state, **extra)
        timings = dict(out.timings)
        threshold = self.threshold(s)
        matting = segmenter.spec.predicts_alpha
        if s.refine_edges and not matting:
            t1 = time.perf_counter()
            low_frame, low_p = out.low_frame, out.low_probability
            if low_p is None:  # a model that answers at the frame's size: refine on the grid it saw
                if frame01 is None:
                    frame01 = float01(frame)
                low = F.interpolate(torch.cat([frame01, out.probability[None, None]], dim=1),
                                    size=out.model_input_size, mode="bilinear", align_corners=False, antialias=True)
                low_frame, low_p = low[:, :3], low[:, 3:]
            p = refine_t(frame01, low_frame, low_p, s.refine_radius, s.refine_eps, frame_u8=frame)
            timings["refine"] = (time.perf_counter() - t1) * 1000.0
        else:
            p = out.probability
        t1 = time.perf_counter()
        if smoother is not None and s.temporal_smoothing:
            smoother.configure(ema=s.temporal_ema, hysteresis=s.hysteresis, motion_gate=s.temporal_motion_gate or None)
            p, mask = smoother.step(p, threshold)
            timings["smooth"] = (time.perf_counter() - t1) * 1000.0
        else:
            if smoother is not None:
                smoother.reset()
            mask = kernels.threshold(p, threshold)
            if mask is None:
                mask = p > threshold
        alpha: Any = p if matting else _SoftAlpha(p, threshold, s.edge_softness, mask)
        part_ids = out.part_ids
        if s.people != "all":
            t1 = time.perf_counter()
            person = main_person(mask, s.people, out.instances)
            mask, alpha = keep_only(person, mask, alpha() if callable(alpha) else alpha, s.edge_softness)
            if part_ids is not None:
                part_ids = torch.where(mask, part_ids, torch.full_like(part_ids, -1))
            timings["people"] = (time.perf_counter() - t1) * 1000.0
        seg = Segmentation(
            p, mask, alpha, threshold=threshold, model=segmenter.name, model_input_size=out.model_input_size,
            elapsed_ms=(time.perf_counter() - t0) * 1000.0, foreground=out.foreground, timings=timings,
            part_ids=part_ids,
        )
        if isinstance(alpha, _SoftAlpha):
            alpha.timings = seg.timings
        return seg, out.state

    def _background(self, image: np.ndarray, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The replacement picture scaled to cover the frame, cached per size (not resized per frame)."""
        key = (id(image), height, width, str(device))
        bg = self._backgrounds.get(key)
        if bg is None:
            if len(self._backgrounds) > 8:
                self._backgrounds.clear()
            bg = torch.from_numpy(np.array(cover(image, width, height))).to(device)
            self._backgrounds[key] = bg
        return bg

    def _draw(self, frame: torch.Tensor, seg: Segmentation, s: EffectSettings) -> np.ndarray:
        h, w = frame.shape[:2]
        background = (self._background(s.background_image, h, w, frame.device)
                      if s.effect == "replace" and s.background_image is not None else None)
        return draw(frame, seg, s, background)


class _SoftAlpha:
    """A segmentation's soft alpha (:func:`_mask_and_alpha` of its refined probability and mask),
    made when first read: the mask effect and the mask-only callers never read it (half a
    millisecond of a 640x480 frame). Records its time in ``timings["alpha"]``."""

    def __init__(self, p: torch.Tensor, threshold: float, softness: float, mask: torch.Tensor) -> None:
        self.p, self.threshold, self.softness, self.mask = p, threshold, softness, mask
        self.timings: dict[str, float] | None = None

    def __call__(self) -> torch.Tensor:
        t0 = time.perf_counter()
        alpha = _mask_and_alpha(self.p, self.threshold, self.softness, self.mask)[1]
        if self.timings is not None:
            self.timings["alpha"] = (time.perf_counter() - t0) * 1000.0
        return alpha


def _mask_and_alpha(p: torch.Tensor, threshold: float, softness: float, mask: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, soft alpha) of a probability: ``p > threshold`` (or a stream's hysteresis ``mask``)
    and :func:`bgkit.soft_alpha`, by the fused CPU kernel where it runs, else by torch."""
    fast = kernels.soft_alpha(p, threshold, softness, mask)
    if fast is not None:
        return fast
    if mask is None:
        return p > threshold, soft_alpha(p, threshold, softness)
    return mask, stream_alpha(p, mask, threshold, softness)


def draw(frame: torch.Tensor, seg: Segmentation, s: EffectSettings, background: torch.Tensor | None = None) -> np.ndarray:
    """Composite an (H, W, 3) uint8 frame tensor with ``seg`` as ``s`` says (numpy out): the one
    definition of every effect. ``background``: the "replace" picture already scaled to the
    frame, as a tensor (None: scaled here from ``s.background_image``, or ``s.background``)."""
    device = frame.device
    blends = s.effect not in PART_EFFECTS and s.effect != "mask"
    alpha = seg.tensor("alpha", device).float() if blends else None  # made now where it is made lazily
    t0 = time.perf_counter()
    flip = s.flip_horizontal
    if s.effect in PART_EFFECTS:
        picture = _draw_parts(frame, seg, s)
        seg.timings["composite"] = (time.perf_counter() - t0) * 1000.0
        return picture
    if s.effect == "mask":
        out = draw_two_colour_mask_t(frame, seg.tensor("mask", device), s.foreground, s.background, s.opacity, flip,
                                     s.mask_blur_amount)
    else:
        assert alpha is not None
        # a matting model's foreground colours, where it has them: less old background in the edges
        fg = seg.tensor("foreground", device) if seg.has_foreground else None
        if s.effect == "bokeh":
            out = bokeh_t(frame, alpha, s.background_blur_amount, s.edge_blur_amount, flip)
        elif s.effect == "replace":
            bg: Any = background
            if bg is None:
                h, w = frame.shape[:2]
                bg = (torch.from_numpy(np.array(cover(s.background_image, w, h))).to(device)
                      if s.background_image is not None else s.background)
            out = replace_t(frame, alpha, bg, s.edge_blur_amount, flip, foreground=fg)
        else:
            out = cutout_t(frame, alpha, s.edge_blur_amount, flip, foreground=fg)
    picture = np.ascontiguousarray(out.cpu().numpy())
    seg.timings["composite"] = (time.perf_counter() - t0) * 1000.0
    return picture


def _draw_parts(frame: torch.Tensor, seg: Segmentation, s: EffectSettings) -> np.ndarray:
    """The body-part effects (BodyPix's drawing helpers, numpy, :mod:`bgkit.ops.parts`)."""
    from ..ops import parts

    if seg.part_ids is None:
        raise ValueError(f"the {s.effect!r} effect needs the body parts, which model {seg.model!r} does not give; "
                         "use a model with a body-part head (bodypix, bodypix_050, ...)")
    image = frame.cpu().numpy()
    if s.effect == "blur_face":
        return parts.blur_body_part(image, seg.part_ids, parts.FACE_PART_IDS, s.background_blur_amount,
                                    s.edge_blur_amount, s.flip_horizontal)
    coloured = parts.to_colored_part_mask(seg.part_ids)
    if s.effect == "pixelated":
        return parts.draw_pixelated_mask(image, coloured, s.opacity, s.mask_blur_amount, s.pixel_cell_width,
                                         s.flip_horizontal)
    from ..ops.compositing import draw_mask

    return draw_mask(image, coloured, s.opacity, s.mask_blur_amount, s.flip_horizontal)


def render(image: ImageLike, segmentation: Segmentation, settings: EffectSettings) -> np.ndarray:
    """Draw ``image`` with a segmentation made earlier, as a :class:`Pipeline` with ``settings``
    would (the same pixels as :meth:`Pipeline.render`), on the CPU."""
    _check_settings(settings)
    if not isinstance(segmentation, Segmentation):
        raise TypeError(f"segmentation must be a bgkit Segmentation; got {type(segmentation).__name__}")
    rgb = load_image(image)
    if rgb.shape[:2] != (segmentation.height, segmentation.width):
        raise ValueError(f"size mismatch: image is {rgb.shape[1]}x{rgb.shape[0]} but the segmentation is "
                         f"{segmentation.width}x{segmentation.height}")
    with torch.inference_mode():
        frame = frame_u8_tensor(rgb, torch.device("cpu"))
        return draw(frame, segmentation, settings)


class Stream:
    """The state of one stream of frames (a video file, a camera), drawn by a :class:`Pipeline`.

    Call :meth:`process` on each frame in order. The pipeline's current settings and segmenter
    apply to each frame; the temporal smoothing keeps its history across setting changes (a new
    threshold applies at once), and starts afresh when the model or the frame size changes, when
    ``temporal_smoothing`` is turned off, or on :meth:`reset`. A recurrent model's state (e.g.
    RVM's) is carried from frame to frame the same way. One frame at a time (a lock).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipeline must be a bgkit.Pipeline; got {type(pipeline).__name__}")
        self.pipeline = pipeline
        self.smoother = TemporalSmoother()
        self._lock = threading.Lock()
        self._segmenter: Segmenter | None = None
        self._size: tuple[int, int] | None = None
        self._state: Any = None
        self.frames = 0

    def reset(self) -> None:
        """Forget the stream's history (a new video, a scene cut, the camera restarted)."""
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        self.smoother.reset()
        self._segmenter, self._size, self._state = None, None, None
        self.frames = 0

    def _run(self, image: ImageLike, draw: bool, settings: EffectSettings | None = None) -> Result | Segmentation:
        rgb = load_image(image)
        pipe = self.pipeline
        segmenter = pipe.segmenter
        settings = pipe.settings if settings is None else _check_settings(settings)
        check_memory(*rgb.shape[:2], settings, pipe.max_pixels)
        with self._lock, torch.inference_mode():
            size = rgb.shape[:2]
            if segmenter is not self._segmenter or size != self._size:
                self._forget()
                self._segmenter, self._size = segmenter, size
                self._state = segmenter.initial_state()
            frame, frame01 = frame_inputs(rgb, segmenter)
            seg, self._state = pipe._segment(segmenter, settings, frame01, self._state, self.smoother, frame)
            self.frames += 1
            if not draw:
                return seg
            return Result(pipe._draw(frame, seg, settings), seg)

    def process(self, frame: ImageLike, settings: EffectSettings | None = None) -> Result:
        """Segment (and smooth) the stream's next frame and draw it (with ``settings`` for this
        frame only, where given; else the pipeline's)."""
        return self._run(frame, draw=True, settings=settings)  # type: ignore[return-value]

    def segment(self, frame: ImageLike, settings: EffectSettings | None = None) -> Segmentation:
        """The stream's next frame's segmentation, without drawing (e.g. for metrics)."""
        return self._run(frame, draw=False, settings=settings)  # type: ignore[return-value]


def process_frame(image: ImageLike, segmenter: Segmenter, settings: EffectSettings | None = None) -> tuple[np.ndarray, Segmentation]:
    """``Pipeline(segmenter, settings).process(image)`` as a (picture, segmentation) pair."""
    return tuple(Pipeline(segmenter, settings).process(image))  # type: ignore[return-value]
