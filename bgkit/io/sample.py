"""The bundled sample photo: NASA astronaut Eileen Collins (public domain, via scikit-image).

Used by the quick-start job, the notebooks and the tests, so everything runs without a photo of
your own::

    from bgkit.sample import sample_image
    image = sample_image()          # (512, 512, 3) uint8 RGB
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .images import load_image

__all__ = ["SAMPLE_CREDIT", "sample_backdrop", "sample_image", "sample_image_path"]

#: Where the sample comes from and its licence (for captions and figure footers).
SAMPLE_CREDIT = "Eileen Collins, NASA (public domain), from scikit-image's data set"

_SAMPLE = Path(__file__).resolve().parent / "data" / "astronaut.jpg"


def sample_image_path() -> Path:
    """Path of the bundled sample photo (a 512 x 512 JPEG of one person)."""
    if not _SAMPLE.is_file():  # a broken install, not a user error
        raise FileNotFoundError(f"bgkit's bundled sample photo is missing: {_SAMPLE} (reinstall bgkit)")
    return _SAMPLE


def sample_image() -> np.ndarray:
    """The bundled sample photo as a fresh (H, W, 3) uint8 RGB array (safe to modify)."""
    return load_image(sample_image_path())


def sample_backdrop(height: int = 512, width: int = 512, seed: int = 0) -> np.ndarray:
    """A made-up background picture for "replace background" demos (no file, no licence):
    an evening-sky gradient with soft out-of-focus lights. (H, W, 3) uint8 RGB."""
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"backdrop size must be at least 1x1; got {width}x{height}")
    h, w = int(height), int(width)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top = np.array([24, 32, 88], np.float32)
    bottom = np.array([236, 128, 72], np.float32)
    img = np.broadcast_to(top * (1.0 - t) + bottom * t, (h, w, 3)).copy()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(14):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.03, 0.09) * min(h, w)
        colour = rng.uniform([200, 160, 80], [255, 240, 200]).astype(np.float32)
        glow = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * r * r)))[..., None] * rng.uniform(0.25, 0.6)
        img = img * (1.0 - glow) + colour * glow
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
