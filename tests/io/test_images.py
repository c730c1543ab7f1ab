"""bgkit.imageio: every accepted image kind, and a clear error for everything else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bgkit import ImageError, load_image, save_image


def test_numpy_rgb_passes_through():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = load_image(img)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, img)


def test_grayscale_and_rgba_become_rgb():
    gray = np.array([[0, 128], [200, 255]], dtype=np.uint8)
    out = load_image(gray)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 10
    rgba[..., 3] = 0
    np.testing.assert_array_equal(load_image(rgba), np.full((2, 2, 3), (10, 0, 0), np.uint8))


def test_pil_modes(tmp_path):
    for mode in ("L", "RGBA", "P", "RGB", "I;16"):
        im = Image.new(mode, (5, 4))
        out = load_image(im)
        assert out.shape == (4, 5, 3) and out.dtype == np.uint8


def test_tensor_uint8_and_float():
    t = torch.zeros(3, 4, 5, dtype=torch.uint8)
    t[0] = 255
    out = load_image(t)
    assert out.shape == (4, 5, 3)
    assert (out[..., 0] == 255).all() and (out[..., 1] == 0).all()
    f = torch.full((3, 2, 2), 0.5)
    assert (load_image(f) == 128).all()
    with pytest.raises(ImageError, match="0..1"):
        load_image(torch.full((3, 2, 2), 2.0))


def test_file_paths(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(np.full((3, 4, 3), 7, np.uint8)).save(p)
    assert (load_image(p) == 7).all()
    assert (load_image(str(p)) == 7).all()


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros((4, 4, 3), np.float32), TypeError, "uint8"),
        (np.zeros((4, 4, 3), np.int64), TypeError, "uint8"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((4, 4, 5), np.uint8), ValueError, "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), ValueError, "shape"),
        (np.zeros((0, 4, 3), np.uint8), ValueError, "empty"),
        (np.zeros((4, 0), np.uint8), ValueError, "empty"),
        (torch.zeros(5, 4, 4), ValueError, "shape"),
        (torch.zeros(3, 4, 5, dtype=torch.int32), TypeError, "uint8 or floating"),
        ([[1, 2, 3]], TypeError, "numpy array"),
        (None, TypeError, "NoneType"),
    ],
)
def test_bad_inputs_have_clear_errors(bad, exc, match):
    with pytest.raises(exc, match=match):
        load_image(bad)


def test_missing_corrupt_and_non_image_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such image file"):
        load_image(tmp_path / "nope.jpg")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="not an image file"):
        load_image(text)
    good = tmp_path / "good.jpg"
    Image.fromarray(np.full((64, 64, 3), 99, np.uint8)).save(good)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageError, match="corrupt.jpg"):
        load_image(corrupt)
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_save_image_roundtrip_and_errors(tmp_path):
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 3] = 255
    p = save_image(rgba, tmp_path / "sub" / "a.png")
    assert Image.open(p).mode == "RGBA"
    with pytest.raises(ImageError, match="jpg has no transparency"):
        save_image(rgba, tmp_path / "a.jpg")
    with pytest.raises(ImageError, match="bmp has no transparency"):
        save_image(rgba, tmp_path / "a.bmp")
    with pytest.raises(ImageError, match="uint8"):
        save_image(rgba.astype(np.float32), tmp_path / "b.png")
