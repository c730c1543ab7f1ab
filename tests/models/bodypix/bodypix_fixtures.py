"""Shared helpers for the BodyPix port's tests: reference outputs, models, pictures.

The model files are the offline copies in ``../shared/models/bodypix`` (``$BGKIT_BODYPIX_MODELS``
overrides it); tests that need them, or the dev photos, are skipped where they are absent.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import fixture_images
from bgkit.models.bodypix.bodypix import BodyPix

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
MODEL_ROOT = Path(os.environ.get("BGKIT_BODYPIX_MODELS") or fixture_images.REPO.parent / "shared" / "models" / "bodypix") / "mobilenet"


@lru_cache(maxsize=None)
def fixture_index() -> dict:
    """tests/fixtures/index.json (versions, variants, cases)."""
    return json.loads((FIXTURES / "index.json").read_text())


@lru_cache(maxsize=None)
def fixture_arrays(variant: str) -> dict[str, np.ndarray]:
    """All arrays of ``tests/fixtures/<variant>.npz``, loaded once."""
    with np.load(FIXTURES / f"{variant}.npz") as z:
        return {k: z[k] for k in z.files}


def model_json(variant: str) -> Path:
    v = fixture_index()["variants"][variant]
    mult = {0.5: "050", 0.75: "075", 1.0: "100"}[v["multiplier"]]
    return MODEL_ROOT / v["quant"] / mult / f"model-stride{v['stride']}.json"


@lru_cache(maxsize=None)
def bodypix(variant: str) -> BodyPix:
    path = model_json(variant)
    if not path.exists():
        pytest.skip(f"model file {path} not present")
    return BodyPix.from_tfjs(path)


@lru_cache(maxsize=8)
def picture(name: str) -> np.ndarray:
    """A fixture picture, checked against the pixel hash recorded when the fixtures were made."""
    if not fixture_images.available(name):
        pytest.skip(f"fixture picture {name!r} is not available on this machine")
    rgb = fixture_images.load(name)
    want = fixture_index()["pixel_sha256"][name]
    got = fixture_images.pixel_sha256(rgb)
    assert got == want, (
        f"{name}: decoded pixels differ from those the fixtures were made from (sha256 {got[:12]} "
        f"!= {want[:12]}); different file or JPEG decoder? Re-make the fixtures."
    )
    return rgb


def unpack_mask(packed: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return np.unpackbits(packed)[: hw[0] * hw[1]].reshape(hw)
