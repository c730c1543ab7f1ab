"""Images in and out: every public function takes the same kinds of image and returns numpy.

Accepted images:
    * a numpy array, uint8, shape (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grayscale;
    * a ``PIL.Image.Image`` in any mode;
    * a path (``str`` or ``os.PathLike``) to an image file PIL can read; its EXIF orientation is
      applied, so the picture is the right way up, as a photo viewer shows it;
    * a ``torch.Tensor`` of shape (3, H, W) (or (1, H, W), (4, H, W)), uint8 0..255 or float 0..1.
Grayscale and RGBA are converted to RGB (alpha is dropped). Anything else raises
``TypeError`` (wrong kind or dtype) or :class:`ImageError` (wrong shape, empty, unreadable file).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .outputs import atomic_path

__all__ = ["ALPHA_SUFFIXES", "IMAGE_SUFFIXES", "ImageError", "ImageLike", "image_size", "load_image", "read_image",
           "save_image"]

ImageLike = Union[np.ndarray, Image.Image, str, os.PathLike, Any]

#: File suffixes read as images (folders of frames, batch inputs, evaluation sets).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Suffixes whose formats keep an alpha channel (cut-outs must be saved as one of these).
ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class ImageError(ValueError):
    """An image that cannot be used: unreadable file, empty, wrong shape."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into an (H, W, 3) uint8 RGB array, turned as its EXIF orientation says."""
    if isinstance(path, str) and _URL.match(path):
        raise ImageError(f"{path!r} is a URL; bgkit reads local files only: download it first")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"No such image file: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image file")
    try:
        with Image.open(p) as im:
            im.load()
            return _from_pil(ImageOps.exif_transpose(im))
    except UnidentifiedImageError:
        raise ImageError(f"{p} is not an image file PIL can read (unknown format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{p} could not be decoded as an image ({exc})") from None


def _from_pil(im: Image.Image) -> np.ndarray:
    if im.width == 0 or im.height == 0:
        raise ImageError(f"image is empty ({im.width}x{im.height})")
    if im.mode != "RGB":
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
            im = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
        im = im.convert("RGB")
    return np.array(im, dtype=np.uint8)  # a writable copy


def _from_numpy(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise TypeError(
            f"numpy images must be uint8 (0..255); got dtype {arr.dtype}. "
            "Convert a 0..1 float image with (img * 255).round().astype(np.uint8)."
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[:, :, :3]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    else:
        raise ImageError(f"numpy images must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"image is empty (shape {arr.shape})")
    return np.ascontiguousarray(arr)


def _from_tensor(t: Any) -> np.ndarray:
    import torch

    shape = tuple(t.shape)
    if t.ndim != 3 or shape[0] not in (1, 3, 4):
        raise ImageError(f"tensor images must have shape (3, H, W), (1, H, W) or (4, H, W); got {shape}")
    if shape[2] in (1, 3, 4):
        raise ImageError(
            f"a tensor of shape {shape} could be (C, H, W) or (H, W, C); bgkit reads tensors as (C, H, W) "
            "(torchvision's order): pass image.permute(2, 0, 1) for an (H, W, C) tensor, or a numpy array"
        )
    if shape[1] == 0 or shape[2] == 0:
        raise ImageError(f"image is empty (shape {shape})")
    t = t.detach().to("cpu")
    if t.dtype == torch.uint8:
        arr = t.numpy()
    elif t.dtype.is_floating_point:
        if not bool(torch.isfinite(t).all()) or float(t.min()) < 0.0 or float(t.max()) > 1.0:
            raise ImageError("float tensor images must hold values in 0..1")
        arr = (t.float() * 255.0).round().to(torch.uint8).numpy()
    else:
        raise TypeError(f"tensor images must be uint8 or floating point; got {t.dtype}")
    arr = np.moveaxis(arr, 0, -1)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def load_image(image: ImageLike) -> np.ndarray:
    """Return ``image`` as a C-contiguous (H, W, 3) uint8 RGB numpy array (see module doc for inputs)."""
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if type(image).__module__.startswith("torch") and hasattr(image, "ndim"):
        return _from_tensor(image)
    raise TypeError(
        "image must be a uint8 numpy array, a PIL image, a file path or a (3, H, W) torch tensor; "
        f"got {type(image).__name__}"
    )


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) in pixels of an image file as it is displayed (EXIF orientation applied),
    read from its header without decoding the pixels."""
    p = Path(path).expanduser()
    try:
        with Image.open(p) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such image file: {p}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{p} could not be read as an image ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def save_image(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (H, W, 3) RGB or (H, W, 4) RGBA uint8 array to ``path`` (format from the suffix).

    The file is written under a temporary name in the same folder and renamed when complete,
    so a failed or interrupted write never leaves a half-written picture. An RGBA picture must
    go to a format that keeps alpha (:data:`ALPHA_SUFFIXES`), else :class:`ImageError`.
    """
    p = Path(path).expanduser()
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"save_image expects a uint8 (H, W), (H, W, 3) or (H, W, 4) array; got {arr.dtype} {arr.shape}")
    suffix = p.suffix.lower()
    if not suffix:
        raise ImageError(f"{p}: no file suffix, so no image format; use e.g. .png or .jpg")
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise ImageError(f"{p.name}: unknown image format {suffix!r}; use .png, .jpg, .webp, .tif or .bmp")
    if arr.ndim == 3 and arr.shape[2] == 4 and suffix not in ALPHA_SUFFIXES:
        raise ImageError(
            f"{p.name}: {suffix} has no transparency, so the alpha channel would be lost; "
            f"save RGBA pictures as {', '.join(ALPHA_SUFFIXES)}"
        )
    with atomic_path(p) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt)
    return p
