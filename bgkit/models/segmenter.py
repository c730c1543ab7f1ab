"""``load_segmenter`` and ``Segmenter``: a model on a device, image in, person probability out.

A :class:`Segmenter` has two faces:

* BodyPix's API, :meth:`Segmenter.segment_person` (an image in, a :class:`bgkit.Segmentation`
  out: the raw model, no edge refinement);
* the pipeline's, :meth:`Segmenter.infer`: a frame already on the device as a tensor in, a
  :class:`ModelOutput` (tensors on the device, and a recurrent state for models that have one)
  out. :class:`bgkit.Pipeline` calls only this.

Models that are more than "resize, normalise, run, resize back" (a recurrent matting network,
BodyPix's own padding rules) subclass :class:`Segmenter` and override :meth:`Segmenter.infer`;
their registry entry names the subclass (``ModelSpec.segmenter``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.checks import check_number
from ..core.frames import float01, frame_u8_tensor
from ..core.segmentation import InternalResolution, Segmentation, resolve_internal_resolution, soft_alpha
from ..io.images import ImageLike, load_image
from ..ops import kernels
from .backends import make_runner, resolve_backend
from .device import select_device
from .registry import ModelSpec, get_spec, list_models

__all__ = ["DEFAULT_MODEL", "FALLBACK_MODEL", "ModelOutput", "Segmenter", "frame_tensor", "load_segmenter"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "deeplabv3"
FALLBACK_MODEL = "selfie"


@dataclass
class ModelOutput:
    """What a model says about one frame, as tensors on the model's device.

    Give either ``probability`` (at the frame's size) or ``low_probability`` with ``frame_size``
    (it is then scaled up bilinearly on first use of :attr:`probability`, and the pipeline's edge
    refinement works on the model's grid from it and ``low_frame``).

    Attributes:
        model_input_size: (height, width) in pixels of the tensor the network saw.
        probability: (H, W) float32 person probability in 0..1 at the frame's size (for matting
            models: the alpha matte).
        low_probability: (1, 1, h, w) the probability on the model's grid.
        low_frame: (1, 3, h, w) float32 RGB 0..1: the frame as the model saw it, before normalising.
        frame_size: (H, W) of the frame.
        foreground: (H, W, 3) float32 RGB 0..1 of the person, for models that predict it.
        state: the recurrent state to pass with the next frame of the same stream (None for
            models without one).
        part_ids: (H, W) int8 body part per pixel (-1 = none), when asked for and the model has them.
        instances: one (H, W) bool mask per person, when asked for and the model splits people.
        timings: milliseconds per stage ("model", ...).
    """

    model_input_size: tuple[int, int]
    low_probability: torch.Tensor | None = None
    low_frame: torch.Tensor | None = None
    frame_size: tuple[int, int] | None = None
    foreground: torch.Tensor | None = None
    state: Any = None
    part_ids: torch.Tensor | None = None
    instances: list[np.ndarray] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    full: torch.Tensor | None = None

    @property
    def probability(self) -> torch.Tensor:
        """(H, W) probability at the frame's size."""
        if self.full is None:
            if self.low_probability is None or self.frame_size is None:
                raise ValueError("a ModelOutput needs a probability or a low_probability with its frame_size")
            p = self.low_probability
            if tuple(p.shape[-2:]) != tuple(self.frame_size):
                p = F.interpolate(p, size=self.frame_size, mode="bilinear", align_corners=False)
            self.full = p[0, 0].clamp(0.0, 1.0)
        return self.full


def frame_tensor(rgb: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """An (H, W, 3) uint8 RGB array as (the same, as an (H, W, 3) uint8 tensor on ``device``,
    a (1, 3, H, W) float32 tensor in 0..1 on ``device``)."""
    t = frame_u8_tensor(rgb, device)
    return t, float01(t)


def frame_inputs(rgb: np.ndarray, segmenter: "Segmenter") -> tuple[torch.Tensor, torch.Tensor | None]:
    """What :meth:`Segmenter.infer` takes for an (H, W, 3) uint8 RGB frame: (the uint8 tensor,
    the (1, 3, H, W) 0..1 float tensor) -- the float one None for a segmenter that takes
    ``frame_u8`` (it makes it only where it needs it: on a CPU the fused kernels read the uint8
    frame, and a 640x480 float copy costs about half a millisecond)."""
    frame = frame_u8_tensor(rgb, segmenter.device)
    return frame, (None if takes_uint8(type(segmenter)) else float01(frame))


def clamp01_(t: torch.Tensor) -> torch.Tensor:
    """``t.clamp_(0, 1)``; on a CPU by numpy, in one thread: for a model's small output a torch op
    costs more in waking its thread pool (0.1 ms between frames) than the clamp itself."""
    if t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() and not t.requires_grad:
        a = t.numpy()
        np.clip(a, 0.0, 1.0, out=a)
        return t
    return t.clamp_(0.0, 1.0)


def frame_size(frame01: torch.Tensor | None, frame_u8: torch.Tensor | None) -> tuple[int, int]:
    """(H, W) of the frame :meth:`Segmenter.infer` was given (``frame01`` or else ``frame_u8``)."""
    if frame01 is not None:
        return int(frame01.shape[-2]), int(frame01.shape[-1])
    if frame_u8 is None:
        raise ValueError("infer needs the frame: frame01 ((1, 3, H, W) float 0..1) or frame_u8 ((H, W, 3) uint8)")
    return int(frame_u8.shape[0]), int(frame_u8.shape[1])


@functools.lru_cache(maxsize=None)
def takes_uint8(cls: type) -> bool:
    """Whether ``cls.infer`` takes ``frame_u8`` (a segmenter written for an older bgkit may not)."""
    params = inspect.signature(cls.infer).parameters
    return "frame_u8" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class Segmenter:
    """A loaded person segmenter (model weights on one device). Make one with :func:`load_segmenter`."""

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device, backend: str = "eager") -> None:
        self.spec = spec
        self.module = module.eval()
        self.device = device
        self.backend = resolve_backend(backend, device)
        self._run = make_runner(spec.name, self.module, device, self.backend)
        self.backend = getattr(self._run, "name", self.backend)  # what actually runs (a failure falls back to torch)
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        #: the model takes RGB in 0..1 as it is (MediaPipe's selfie): no per-frame normalising
        self._takes_01 = tuple(spec.mean) == (0.0, 0.0, 0.0) and tuple(spec.std) == (1.0, 1.0, 1.0)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def default_threshold(self) -> float:
        """The segmentation threshold this model uses when none is given (its registry entry's)."""
        return self.spec.default_threshold

    @property
    def stateful(self) -> bool:
        """True for models that carry a recurrent state from frame to frame (see :meth:`infer`)."""
        return False

    def __repr__(self) -> str:
        return f"Segmenter({self.spec.name!r}, device={str(self.device)!r}, backend={self.backend!r})"

    def describe(self) -> str:
        """One line for people: the model, its licence and the device."""
        return f"{self.spec.title} on {self.device}, {self.backend} backend (weights licence: {self.spec.licence})"

    def model_input_size(
        self, height: int, width: int, internal_resolution: InternalResolution = None
    ) -> tuple[int, int]:
        """(height, width) in pixels of the tensor the model sees for a height x width image."""
        spec = self.spec
        if internal_resolution is None:
            internal_resolution = spec.default_internal_resolution
        if internal_resolution is None:
            if spec.native_size is None:
                raise ValueError(f"{spec.name} has neither a native size nor a default internal resolution")
            return spec.native_size
        scale = resolve_internal_resolution(internal_resolution)
        m = spec.size_multiple

        def side(n: int) -> int:
            return max(m, int(math.ceil(max(1, round(n * scale)) / m)) * m)

        return side(height), side(width)

    # -- the pipeline's face -------------------------------------------------------------------

    def initial_state(self) -> Any:
        """The recurrent state of a new stream (None for models without one)."""
        return None

    @property
    def has_parts(self) -> bool:
        """True for models with a body-part head (the "parts", "pixelated" and "blur_face" effects)."""
        return False

    @property
    def has_instances(self) -> bool:
        """True for models that tell people apart themselves (``infer(..., instances=True)``)."""
        return False

    @torch.inference_mode()
    def infer(self, frame01: torch.Tensor | None, internal_resolution: InternalResolution = None, state: Any = None,
              parts: bool = False, instances: bool = False, frame_u8: torch.Tensor | None = None) -> ModelOutput:
        """Run the model on one frame.

        Args:
            frame01: (1, 3, H, W) float32 RGB in 0..1 on ``self.device`` (see :func:`frame_tensor`),
                or None where ``frame_u8`` is given (it is then made from that where needed).
            internal_resolution: see :meth:`segment_person`.
            state: the previous frame's ``ModelOutput.state`` for stateful models (ignored here).
            parts: also give the body parts (``part_ids``); ValueError for a model without them.
                Passed only when True, and only to models whose :attr:`has_parts` is True.
            instances: also give one mask per person (``instances``). Passed only when True, and
                only to models whose :attr:`has_instances` is True; for the others the pipeline
                tells people apart by the mask's connected parts. (So a subclass written for an
                older bgkit, whose ``infer`` takes neither, keeps working.)
            frame_u8: the same frame as an (H, W, 3) uint8 tensor on ``self.device``, where the
                caller has it (the pipeline does): on a CPU the model's input is then scaled down
                from it by the fused kernel, and ``frame01`` may be None.

        Returns:
            A :class:`ModelOutput` at the frame's size.
        """
        if parts:
            raise ValueError(f"{self.name} has no body parts; the part effects need a model with a body-part head "
                             "(bodypix, bodypix_050, ...)")
        t0 = time.perf_counter()
        h, w = frame_size(frame01, frame_u8)
        size = self.model_input_size(h, w, internal_resolution)
        low, x = self._inputs(frame01, frame_u8, (int(size[0]), int(size[1])))
        prob = self._run(x).to(self.device)
        if prob.shape[-2:] != low.shape[-2:]:
            prob = F.interpolate(prob, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return ModelOutput((int(size[0]), int(size[1])), low_probability=clamp01_(prob), low_frame=low,
                           frame_size=(int(h), int(w)), timings={"model": (time.perf_counter() - t0) * 1000.0})

    def _inputs(self, frame01: torch.Tensor | None, frame_u8: torch.Tensor | None, size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the frame at the model's input ``size``, (1, 3, h, w) RGB 0..1; the same normalised for
        the model). Scaled with antialiased bilinear resampling: straight from ``frame_u8`` and
        normalised in the same pass by the fused kernel where it runs
        (:func:`bgkit.ops.kernels.resize_antialias`, the float result to rounding), else by torch
        from the float frame."""
        h, w = frame_size(frame01, frame_u8)
        if (h, w) == size:
            low = frame01 if frame01 is not None else float01(frame_u8)
        else:
            if frame_u8 is not None:
                fast = kernels.resize_antialias(frame_u8, size, None if self._takes_01 else (self.spec.mean,
                                                                                             self.spec.std))
                if fast is not None:
                    return fast
            low = F.interpolate(frame01 if frame01 is not None else float01(frame_u8), size=size, mode="bilinear",
                                align_corners=False, antialias=True)
        return low, (low if self._takes_01 else (low - self._mean) / self._std)

    # -- BodyPix's face ----------------------------------------------------------------------------

    def segment_person(
        self,
        image: ImageLike,
        internal_resolution: InternalResolution = None,
        segmentation_threshold: float | None = None,
        flip_horizontal: bool = False,
    ) -> Segmentation:
        """Segment the person (all people) in ``image``, like BodyPix's ``segmentPerson``.

        The raw model: no edge refinement, no smoothing (a :class:`bgkit.Pipeline` adds those).

        Args:
            image: RGB image (see :func:`bgkit.load_image` for accepted kinds).
            internal_resolution: "low", "medium", "high", "full" (0.25, 0.5, 0.75, 1.0) or a number
                in (0, 2]: the image is scaled by it before the model and the result scaled back.
                None uses the model's default (``spec.default_internal_resolution``).
            segmentation_threshold: probability (0..1) above which a pixel is "person"; None uses
                the model's default (:attr:`default_threshold`).
            flip_horizontal: mirror the result left-right, as BodyPix's option does (for a
                mirrored webcam view). The pipeline never flips segmentations, only pictures.

        Returns:
            A :class:`Segmentation` at the input's size (its alpha the probability's soft edge).
        """
        t0 = time.perf_counter()
        threshold = self.default_threshold if segmentation_threshold is None else check_number(
            segmentation_threshold, "segmentation_threshold", 0.0, 1.0)
        rgb = load_image(image)
        with torch.inference_mode():
            frame, x01 = frame_inputs(rgb, self)
            out = self.infer(x01, internal_resolution, self.initial_state(),
                             **({"frame_u8": frame} if x01 is None else {}))
            prob = out.probability.flip(-1) if flip_horizontal else out.probability
            fg = out.foreground
            if fg is not None and flip_horizontal:
                fg = fg.flip(1)
            alpha = prob if self.spec.predicts_alpha else soft_alpha(prob, threshold)
            return Segmentation(
                prob, prob > threshold, alpha, threshold=threshold, model=self.spec.name,
                model_input_size=out.model_input_size, elapsed_ms=(time.perf_counter() - t0) * 1000.0,
                foreground=fg, timings=out.timings,
            )


def _auto_model(weights: Any) -> tuple[str, str]:
    """The model ``load_segmenter("auto")`` picks, and why."""
    if weights is not None:
        suffix = Path(str(weights)).suffix.lower() if isinstance(weights, (str, Path)) else ""
        if suffix:
            for name in list_models():
                spec = get_spec(name)
                if suffix in spec.weights_suffixes and not spec.opt_in:
                    return name, f"the weights file is a {suffix} file"
            opt_in = [n for n in list_models() if suffix in get_spec(n).weights_suffixes]
            if opt_in:
                raise ValueError(f"{weights}: only opt-in models read {suffix!r} files ({', '.join(opt_in)}), and "
                                 f"'auto' never picks one; name it: load_segmenter({opt_in[0]!r}, weights=...)")
            known = sorted({s for n in list_models() for s in get_spec(n).weights_suffixes})
            raise ValueError(f"no model reads {suffix!r} weights files ({weights}); known kinds: {', '.join(known)}")
        return DEFAULT_MODEL, "weights were given as a state dict"
    if get_spec(DEFAULT_MODEL).is_available():
        return DEFAULT_MODEL, "its weights are on this machine"
    return FALLBACK_MODEL, f"the {DEFAULT_MODEL} weights are not on this machine"


_LICENCE_LOGGED: set[str] = set()


def load_segmenter(
    name: str = DEFAULT_MODEL, device: str | torch.device = "auto", weights: Any = None, backend: str = "auto"
) -> Segmenter:
    """Load a person segmenter by registry name.

    Args:
        name: a registered model (:func:`bgkit.list_models`: "deeplabv3" (default), "lraspp",
            "selfie", "selfie_landscape", ...) or "auto": deeplabv3 where its weights are on this
            machine, else selfie; with ``weights`` given, the model that reads that kind of file
            (a ``.tflite`` is a selfie model). Opt-in models (copyleft weights) are never chosen
            by "auto". The choice is logged.
        device: "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "mps" or a torch.device.
        weights: None for the model's official weights, a path to a weights file, or (torchvision
            models) a state-dict mapping.
        backend: "auto" (on the CPU: OpenVINO, else ONNX Runtime, whichever is installed, else
            torch; on a GPU: torch), "torch" (channels_last), "onnxruntime", "openvino", or
            "eager" (the plain PyTorch module, the baseline). All give the same masks (see
            tests/models/test_backends.py).

    Raises:
        ValueError: unknown name, device or backend.
        bgkit.WeightsUnavailableError: weights not on this machine and not downloadable, or a
            weights file that is not what the model reads.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string; got {type(name).__name__}")
    if name == "auto":
        name, why = _auto_model(weights)
        log.info("bgkit: using model %r (%s)", name, why)
    spec = get_spec(name)
    dev = select_device(device)
    module = spec.build(weights, dev)
    if spec.opt_in and name not in _LICENCE_LOGGED:
        _LICENCE_LOGGED.add(name)
        log.warning("bgkit: %s is an opt-in model; licence: %s", spec.title, spec.licence)
    cls = spec.segmenter or Segmenter
    return cls(spec, module, dev, backend=backend)
