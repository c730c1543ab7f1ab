"""The model registry: every person segmenter bgkit knows, by name.

Like torchvision's weights enums, each entry (a :class:`ModelSpec`) knows its input size, its
normalisation, where its weights come from and their licence, and how to build the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch


class WeightsUnavailableError(RuntimeError):
    """A model's weights are not on this machine and could not be downloaded, or a weights file
    is not what it claims to be (the message says which, and what to do)."""


#: The first bytes each kind of weights file starts with (offset, bytes), and what it is called.
FILE_KINDS: dict[str, tuple[int, tuple[bytes, ...], str]] = {
    "tflite": (4, (b"TFL3",), "a TensorFlow Lite model (.tflite)"),
    "pytorch": (0, (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"), "a PyTorch weights file (.pth)"),
    "onnx": (0, (b"\x08",), "an ONNX model (.onnx)"),
    "tfjs": (0, (b"{",), "a TF.js model manifest (model.json)"),
}


def file_kind(path: Path) -> str | None:
    """Which of :data:`FILE_KINDS` a file is, by its first bytes (None: none of them)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    for kind, (offset, magics, _) in FILE_KINDS.items():
        if any(head[offset:offset + len(m)] == m for m in magics):
            return kind
    return None


def check_file_kind(path: Path, kind: str) -> None:
    """Raise :class:`WeightsUnavailableError` unless ``path`` starts like a ``kind`` file, saying
    what it looks like instead -- before any parser sees it."""
    found = file_kind(path)
    if found != kind:
        what = FILE_KINDS[found][2] if found else "none of the weights formats bgkit reads"
        raise WeightsUnavailableError(
            f"{path} is not {FILE_KINDS[kind][2]}: it looks like {what}. Give the model its own kind of file "
            "(or --model auto, which picks the model from the file)"
        )



def local_weights_file(weights: Any, model: str, expects: str, kind: str) -> Path:
    """A weights path a user gave (``weights=``) for ``model``, checked: a str or path of an
    existing file that starts like a ``kind`` file. ``expects`` names the file the model wants."""
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights for {model} must be None or the path of {expects}; got {type(weights).__name__}")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{model} weights file not found: {path}")
    check_file_kind(path, kind)
    return path

@dataclass(frozen=True)
class ModelSpec:
    """Everything bgkit needs to know about one segmenter.

    Attributes:
        name: registry key, e.g. ``"deeplabv3"``.
        title: human-readable name.
        native_size: (height, width) in pixels of the model's own fixed input, or None if the
            model was trained for any size.
        default_internal_resolution: used when ``segment_person(internal_resolution=None)``;
            None means "resize the whole frame to ``native_size``".
        mean, std: per-channel normalisation applied to RGB scaled to 0..1.
        size_multiple: model-input sides are rounded up to a multiple of this many pixels.
        weights_source: where the weights come from (URL or description).
        licence: the weights' licence.
        build: ``build(weights, device) -> nn.Module``; the module maps normalised float
            N x 3 x h x w RGB to N x 1 x h x w person probability in 0..1.
        is_available: True if the weights can be loaded without the network.
        weights_file: ``weights_file(weights) -> Path | None``: the local file that ``weights``
            (the same argument as ``build``'s; None = the official weights) load from, or None
            for in-memory weights.
        default_threshold: the segmentation threshold used when the settings leave it to the
            model (chosen on the dev data, see the model's module).
        predicts_alpha: True for matting models whose output is an alpha matte with its own
            edge refinement (bgkit's guided filter and soft-alpha ramp are not applied).
        opt_in: never chosen by ``load_segmenter("auto")`` (e.g. weights under a copyleft licence).
        segmenter: the :class:`bgkit.Segmenter` subclass that runs it (None: ``Segmenter``).
        weights_suffixes: file suffixes its weights files have (``load_segmenter("auto",
            weights=...)`` picks the model whose suffix matches).
    """

    name: str
    title: str
    native_size: tuple[int, int] | None
    default_internal_resolution: str | float | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size_multiple: int
    weights_source: str
    licence: str
    build: Callable[[Any, torch.device], torch.nn.Module]
    is_available: Callable[[], bool]
    weights_file: Callable[[Any], Path | None] = lambda weights: None
    default_threshold: float = 0.5
    predicts_alpha: bool = False
    opt_in: bool = False
    segmenter: type | None = None
    weights_suffixes: tuple[str, ...] = ()


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry under ``spec.name`` (replacing any entry of that name)."""
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """Return the registered spec called ``name``; ValueError listing the known names otherwise."""
    _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown model {name!r}; registered models: {known} (or 'auto')") from None


def list_models() -> list[str]:
    """Names of all registered models."""
    _load_builtin_models()
    return list(_REGISTRY)


def available_models() -> list[str]:
    """Names of the registered models whose weights are on this machine (no network needed)."""
    return [name for name in list_models() if _REGISTRY[name].is_available()]


def _load_builtin_models() -> None:
    # Importing the modules registers their models.
    # In this order, so listings start with the default model.
    from . import torchvision_models  # noqa: F401
    from . import selfie  # noqa: F401
    from . import bodypix  # noqa: F401  # isort: skip
    from . import rvm  # noqa: F401  # isort: skip
