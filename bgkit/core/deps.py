"""Optional dependencies: import them with a message that says which extra installs them."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["EXTRAS", "MissingDependencyError", "has", "require"]

#: import name -> (pip extra, what it is for)
EXTRAS: dict[str, tuple[str, str]] = {
    "av": ("video", "reading and writing video files"),
    "tqdm": ("video", "progress bars"),
    "matplotlib": ("figures", "comparison figures"),
    "onnxruntime": ("fast", "the ONNX Runtime backend"),
    "onnx": ("fast", "exporting models to ONNX for the fast backends"),
    "openvino": ("fast", "the OpenVINO backend"),
    "ipywidgets": ("notebook", "the Jupyter widgets"),
    "anywidget": ("notebook", "the live camera widget"),
    "ipywebrtc": ("notebook", "the camera source of the live widget"),
    "ray": ("ray", "batch processing on a Ray cluster"),
    "mediapipe": ("bench", "MediaPipe's own runtime in the benchmark"),
}


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names the pip extra that installs it."""


def has(module: str) -> bool:
    """True if ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, what = EXTRAS.get(module.split(".")[0], ("all", module))
        raise MissingDependencyError(
            f"{purpose or what} needs the {module.split('.')[0]!r} package, which is not installed: "
            f"pip install 'bgkit[{extra}]' ({exc})"
        ) from None
