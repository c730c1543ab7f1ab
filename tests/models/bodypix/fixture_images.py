"""The pictures the BodyPix fixtures were made from, read at test time (never stored with the fixtures).

Each fixture picture is a photo from the developer data set (``../shared/data/images`` beside the repository), the
project's bundled sample (``astronaut.jpg``), or a *composite*: two dev photos placed side by side
on a black canvas as tall as the taller one (top-aligned, no resampling), so that the composite is
bit-exact wherever the same PIL/libjpeg decodes the JPEGs.

Environment variables ``BGKIT_DEV_DATA`` (folder holding ``images/``) and ``BGKIT_SAMPLE_IMAGE``
override the default locations. ``pixel_sha256`` identifies the decoded pixels, so tests can
tell a different picture (or decoder) from a regression.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
DEV_DATA = Path(os.environ.get("BGKIT_DEV_DATA", REPO.parent / "shared" / "data"))


def sample_image_path() -> Path:
    """bgkit's bundled astronaut.jpg (``$BGKIT_SAMPLE_IMAGE`` overrides it)."""
    return Path(os.environ.get("BGKIT_SAMPLE_IMAGE") or REPO / "bgkit" / "io" / "data" / "astronaut.jpg")


#: Dev photos used (stems of ../shared/data/images/*).
DEV_STEMS: tuple[str, ...] = (
    "vik_001", "vik_002", "vik_003", "vik_050", "vik_077", "vik_150", "vik_250", "vik_271",
    "vik_280", "vik_289", "neg_skimage_brick", "neg_davis_goat_00045", "neg_davis_dog_00030",
)  # fmt: skip

#: Composite name -> (left stem, right stem).
COMPOSITES: dict[str, tuple[str, str]] = {
    "comp_003_050": ("vik_003", "vik_050"),
    "comp_001_077": ("vik_001", "vik_077"),
}

ALL_NAMES: tuple[str, ...] = DEV_STEMS + ("astronaut",) + tuple(COMPOSITES)


def _dev_path(stem: str) -> Path:
    for ext in (".jpg", ".png"):
        p = DEV_DATA / "images" / f"{stem}{ext}"
        if p.exists():
            return p
    raise FileNotFoundError(f"no {stem}.jpg/.png under {DEV_DATA / 'images'}")


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def available(name: str) -> bool:
    """Whether the source files of fixture picture ``name`` are present on this machine."""
    try:
        if name == "astronaut":
            return sample_image_path().exists()
        stems = COMPOSITES.get(name, (name,))
        for s in stems:
            _dev_path(s)
        return True
    except FileNotFoundError:
        return False


def load(name: str) -> np.ndarray:
    """Fixture picture ``name`` as an (H, W, 3) uint8 RGB array."""
    if name == "astronaut":
        return _read(sample_image_path())
    if name in COMPOSITES:
        left, right = (_read(_dev_path(s)) for s in COMPOSITES[name])
        h = max(left.shape[0], right.shape[0])
        out = np.zeros((h, left.shape[1] + right.shape[1], 3), np.uint8)
        out[: left.shape[0], : left.shape[1]] = left
        out[: right.shape[0], left.shape[1]:] = right
        return out
    return _read(_dev_path(name))


def pixel_sha256(rgb: np.ndarray) -> str:
    """sha256 of the (H, W, 3) uint8 pixels plus their shape, hex."""
    import hashlib

    h = hashlib.sha256(f"{rgb.shape}".encode())
    h.update(np.ascontiguousarray(rgb, np.uint8).tobytes())
    return h.hexdigest()
