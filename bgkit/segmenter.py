"""``load_segmenter`` and ``Segmenter.segment_person``: image in, person segmentation out."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .backends import make_runner, resolve_backend
from .device import select_device
from .imageio import ImageLike, load_image
from .models.registry import ModelSpec, get_spec
from .segmentation import InternalResolution, Segmentation, resolve_internal_resolution

DEFAULT_MODEL = "deeplabv3"
FALLBACK_MODEL = "selfie"


class Segmenter:
    """A loaded person segmenter (model weights on one device). Make one with :func:`load_segmenter`."""

    def __init__(
        self, spec: ModelSpec, module: torch.nn.Module, device: torch.device, backend: str = "eager",
        weights_file: Path | None = None,
    ) -> None:
        self.spec = spec
        self.module = module.eval()
        self.device = device
        self.backend = resolve_backend(backend, device)
        self._run = make_runner(spec.name, self.module, device, self.backend, beside=weights_file)
        self.backend = self._run.name  # what actually runs (an export failure falls back to torch)
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    @property
    def name(self) -> str:
        return self.spec.name

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

    @torch.inference_mode()
    def predict(self, image01: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Person probability for a 1 x 3 x H x W float RGB tensor in 0..1 (on ``self.device``).

        The image is resized to ``size`` (height, width), normalised, run through the model, and the
        result resized back: returns a 1 x 1 x H x W float32 tensor in 0..1.
        """
        h, w = image01.shape[-2:]
        x = image01
        if (h, w) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = (x - self._mean) / self._std
        prob = self._run(x).to(self.device)
        if prob.shape[-2:] != (h, w):
            prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)
        return prob.clamp_(0.0, 1.0)

    def segment_person(
        self,
        image: ImageLike,
        internal_resolution: InternalResolution = None,
        segmentation_threshold: float = 0.7,
        flip_horizontal: bool = False,
    ) -> Segmentation:
        """Segment the person (all people) in ``image``, like BodyPix's ``segmentPerson``.

        Args:
            image: RGB image (see :func:`bgkit.load_image` for accepted kinds).
            internal_resolution: "low", "medium", "high", "full" (0.25, 0.5, 0.75, 1.0) or a number
                in (0, 2]: the image is scaled by it before the model and the result scaled back.
                None uses the model's default (see ``spec.default_internal_resolution``).
            segmentation_threshold: probability (0..1) above which a pixel is "person".
            flip_horizontal: mirror the result left-right (for a mirrored webcam view).

        Returns:
            A :class:`Segmentation` at the input's size.
        """
        t0 = time.perf_counter()
        if not (0.0 <= float(segmentation_threshold) <= 1.0):
            raise ValueError(f"segmentation_threshold must be in [0, 1]; got {segmentation_threshold!r}")
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        size = self.model_input_size(height, width, internal_resolution)
        t = torch.from_numpy(rgb) if rgb.flags.writeable else torch.tensor(rgb)
        x = t.to(self.device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        prob = self.predict(x, size)[0, 0]
        if flip_horizontal:
            prob = prob.flip(-1)
        probs = prob.to("cpu", torch.float32).numpy()
        return Segmentation.from_probabilities(
            probs,
            threshold=float(segmentation_threshold),
            model=self.spec.name,
            model_input_size=(size[1], size[0]),
            elapsed_ms=(time.perf_counter() - t0) * 1000.0,
        )


def load_segmenter(
    name: str = DEFAULT_MODEL, device: str | torch.device = "auto", weights: Any = None, backend: str = "auto"
) -> Segmenter:
    """Load a person segmenter by registry name.

    Args:
        name: "deeplabv3" (default), "lraspp", "selfie", "selfie_landscape", or "auto"
            (deeplabv3 where its weights are on this machine, else selfie; says which it chose).
        device: "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "mps" or a torch.device.
        weights: None for the model's official weights, a path to a weights file, or (torchvision
            models) a state-dict mapping.
        backend: "auto" (on the CPU: OpenVINO, else ONNX Runtime, whichever is installed, else
            torch; on a GPU: torch), "torch" (channels_last), "onnxruntime", "openvino", or
            "eager" (the plain PyTorch module, the baseline). All give the same masks (see
            tests/test_backends.py); :mod:`bgkit.backends` has the measured speeds.

    Raises:
        ValueError: unknown name or device.
        bgkit.WeightsUnavailableError: weights not on this machine and not downloadable.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string; got {type(name).__name__}")
    if name == "auto":
        if weights is not None or get_spec(DEFAULT_MODEL).is_available():
            name = DEFAULT_MODEL
            why = "its weights are on this machine" if weights is None else "weights were given"
        else:
            name = FALLBACK_MODEL
            why = f"the {DEFAULT_MODEL} weights are not on this machine"
        print(f"bgkit: using model {name!r} ({why})", file=sys.stderr)
    spec = get_spec(name)
    dev = select_device(device)
    module = spec.build(weights, dev)
    return Segmenter(spec, module, dev, backend=backend, weights_file=spec.weights_file(weights))
