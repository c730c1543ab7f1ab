"""bgkit.segmenter: load_segmenter's names and devices, and segment_person's input handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import segmentation as tvseg

import bgkit
from bgkit.models.device import select_device


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    state = tvseg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).state_dict()
    return bgkit.load_segmenter("lraspp", device="cpu", weights=state)


def test_device_auto_is_cpu_here_and_bad_devices_are_clear():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type in (expected, "mps")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="deeplabv3.*lraspp|lraspp.*deeplabv3"):
        bgkit.load_segmenter("nosuchmodel")
    with pytest.raises(TypeError, match="string"):
        bgkit.load_segmenter(3)


def test_every_input_kind_gives_the_same_result(segmenter, tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    p = tmp_path / "img.png"
    Image.fromarray(img).save(p)
    ref = segmenter.segment_person(img).probabilities
    for kind in (Image.fromarray(img), p, str(p), torch.from_numpy(img).permute(2, 0, 1).contiguous(),
                 torch.from_numpy(img).permute(2, 0, 1).float() / 255, np.dstack([img, np.full(img.shape[:2], 9, np.uint8)])):
        np.testing.assert_allclose(segmenter.segment_person(kind).probabilities, ref, atol=1e-6)
    gray = segmenter.segment_person(img[..., 0])
    assert gray.mask.shape == (40, 56)
    ro = img.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(segmenter.segment_person(ro).probabilities, ref)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros((8, 8, 3), np.float64), TypeError, "uint8"),
        (np.zeros((8, 8, 2), np.uint8), ValueError, "shape"),
        (np.zeros((0, 8, 3), np.uint8), ValueError, "empty"),
        ("does/not/exist.png", FileNotFoundError, "No such image file"),
        (12, TypeError, "int"),
    ],
)
def test_bad_input_is_a_clear_error(segmenter, bad, exc, match):
    with pytest.raises(exc, match=match):
        segmenter.segment_person(bad)


def test_corrupt_and_non_image_files(segmenter, tmp_path):
    txt = tmp_path / "readme.txt"
    txt.write_text("hello")
    with pytest.raises(bgkit.ImageError, match="not an image file"):
        segmenter.segment_person(txt)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(bgkit.ImageError, match="broken.png"):
        segmenter.segment_person(bad)


def test_describe_and_repr(segmenter):
    assert "LR-ASPP" in segmenter.describe() and "cpu" in segmenter.describe()
    assert repr(segmenter) == "Segmenter('lraspp', device='cpu', backend='openvino')"  # auto, on the CPU
    assert 'openvino backend' in segmenter.describe()


def test_auto_falls_back_to_selfie_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no deeplabv3 weights cached
    monkeypatch.delenv("BGKIT_DEEPLABV3_WEIGHTS", raising=False)
    with caplog.at_level("INFO", logger="bgkit"):
        seg = bgkit.load_segmenter("auto", device="cpu")
    assert seg.name == "selfie"
    assert "using model 'selfie'" in caplog.text
    s = seg.segment_person(np.zeros((30, 40, 3), np.uint8))
    assert s.model_input_size == (256, 256)  # MediaPipe's own behaviour: whole frame to 256x256


def test_auto_prefers_deeplabv3_when_its_weights_are_here(tmp_path, monkeypatch, caplog):
    state = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True).state_dict()
    path = tmp_path / "dl.pth"
    torch.save(state, path)
    monkeypatch.setenv("BGKIT_DEEPLABV3_WEIGHTS", str(path))
    with caplog.at_level("INFO", logger="bgkit"):
        assert bgkit.load_segmenter("auto", device="cpu", backend="eager").name == "deeplabv3"
    assert "using model 'deeplabv3'" in caplog.text


def test_auto_follows_the_weights_file_kind(monkeypatch):
    from bgkit.models.downloads import selfie_model_path

    monkeypatch.delenv("BGKIT_DEEPLABV3_WEIGHTS", raising=False)
    seg = bgkit.load_segmenter("auto", device="cpu", weights=str(selfie_model_path("general")), backend="eager")
    assert seg.name == "selfie"
    with pytest.raises(ValueError, match="no model reads '.xyz' weights"):
        bgkit.load_segmenter("auto", device="cpu", weights="model.xyz")


def test_every_model_names_the_file_its_weights_load_from(tmp_path, monkeypatch):
    from bgkit.models.downloads import cached_path
    from bgkit.models.registry import get_spec, list_models
    from bgkit.models.torchvision_models import hub_cache_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "bgkit"))
    monkeypatch.delenv("BGKIT_DEEPLABV3_WEIGHTS", raising=False)
    from bgkit.models.bodypix.segmenter import BODYPIX_VARIANTS, bodypix_files

    official = {"selfie": cached_path("general"), "selfie_landscape": cached_path("landscape"),
                "deeplabv3": hub_cache_path("deeplabv3"), "lraspp": hub_cache_path("lraspp")}
    for name, variant in BODYPIX_VARIANTS.items():
        official[name] = tmp_path / "bgkit" / bodypix_files(variant)[0].filename  # the manifest
    official["rvm"] = tmp_path / "bgkit" / "rvm_mobilenetv3_fp32.onnx"
    assert set(official) == set(list_models())
    for name, path in official.items():
        spec = get_spec(name)
        assert spec.weights_file(None) == path and path.is_relative_to(tmp_path), name
        assert spec.weights_file(str(tmp_path / "w.bin")) == tmp_path / "w.bin"
    assert get_spec("lraspp").weights_file({"a": torch.zeros(1)}) is None  # in memory: no file
    monkeypatch.setenv("BGKIT_DEEPLABV3_WEIGHTS", str(tmp_path / "env.pth"))
    assert get_spec("deeplabv3").weights_file(None) == tmp_path / "env.pth"


@pytest.mark.parametrize("resolution", ["medium", "full"])
def test_infer_takes_the_uint8_frame_alone(segmenter, resolution):
    """The pipeline gives infer only the uint8 frame (frame01=None) for segmenters that take it:
    the same output as from both, at a resized input and at the frame's own size; neither is an error."""
    from bgkit.models.segmenter import frame_inputs, frame_tensor

    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame, x01 = frame_inputs(rgb, segmenter)
    assert x01 is None and frame.dtype == torch.uint8 and frame.shape == (48, 64, 3)
    u8, both01 = frame_tensor(rgb, segmenter.device)
    alone = segmenter.infer(None, resolution, frame_u8=frame)
    both = segmenter.infer(both01, resolution, frame_u8=u8)
    assert torch.equal(alone.probability, both.probability)
    with pytest.raises(ValueError, match="frame01 .* or frame_u8"):
        segmenter.infer(None, resolution)
