"""DeepLabV3 / LR-ASPP: the real torchvision architectures through the whole pipeline.

Pretrained weights cannot be downloaded on CI, so these tests use randomly initialised weights,
passed as a state-dict mapping and as a file the test writes. They check plumbing (shapes,
resolutions, thresholds, weight loading, errors), never segmentation quality.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torchvision.models import segmentation as tvseg

from hypothesis import given, settings
from hypothesis import strategies as st

import bgkit
import bgkit.io.sample
from bgkit import WeightsUnavailableError
from bgkit.models import torchvision_models as tvm
from bgkit.models.standin import stand_in_state_dict


def _random_state(name: str) -> dict:
    torch.manual_seed(0)
    if name == "deeplabv3":
        net = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    else:
        net = tvseg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
    return net.state_dict()


@pytest.fixture(scope="module", params=["deeplabv3", "lraspp"])
def random_model(request, tmp_path_factory):
    name = request.param
    state = _random_state(name)
    path = tmp_path_factory.mktemp(name) / f"{name}.pth"
    torch.save(state, path)
    return name, state, path


def test_registry_entries_describe_themselves():
    for name in ("deeplabv3", "lraspp"):
        spec = bgkit.get_spec(name)
        assert spec.default_internal_resolution == "medium"
        assert spec.mean == tvm.IMAGENET_MEAN and spec.std == tvm.IMAGENET_STD
        assert "torchvision" in spec.weights_source and spec.licence
    assert {"deeplabv3", "lraspp"} <= set(bgkit.list_models())


def test_state_dict_mapping_and_file_give_the_same_model(random_model):
    name, state, path = random_model
    a = bgkit.load_segmenter(name, device="cpu", weights=state)
    b = bgkit.load_segmenter(name, device="cpu", weights=path)
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    sa, sb = a.segment_person(img), b.segment_person(img)
    np.testing.assert_array_equal(sa.probabilities, sb.probabilities)
    # the person channel is a softmax probability of the real 21-class head
    assert a.module.net.classifier is not None


def test_eager_module_is_plain_torchvision_and_fast_variant_matches_it(random_model):
    name = random_model[0]
    state = stand_in_state_dict(name)  # probabilities that vary, so the comparison means something
    seg = bgkit.load_segmenter(name, device="cpu", weights=state, backend="eager")
    net = tvm._architecture(name, aux_loss=name == "deeplabv3")
    net.load_state_dict(state)
    net.eval()
    photo = torch.from_numpy(bgkit.io.sample.sample_image()).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    photo = torch.nn.functional.interpolate(photo, size=(120, 104), mode="bilinear", antialias=True)
    mean, std = torch.tensor(tvm.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(tvm.IMAGENET_STD).view(1, 3, 1, 1)
    x = torch.cat([photo, photo.flip(-1)]).sub(mean).div(std)
    with torch.inference_mode():
        ref = torch.softmax(net(x)["out"], dim=1)[:, tvm.VOC_PERSON : tvm.VOC_PERSON + 1]
        eager = seg.module(x)
        fast = seg.module.fast_variant()(x)
    if name == "deeplabv3":  # the pretrained weights carry the auxiliary head; eager runs it as torchvision does
        assert seg.module.net.aux_classifier is not None
    torch.testing.assert_close(eager, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)
    assert float(ref.max() - ref.min()) > 0.1  # not a constant: the comparison means something
    assert seg.module.fast_variant().net is seg.module.net  # shares the weights, no copy


class _FixedLogits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.logits}


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(0.0, 200.0),
    seed=st.integers(0, 2**16),
)
def test_fast_softmax_head_equals_softmax(scale, seed):
    # any logits, including ones whose differences overflow exp(): the same probability, never NaN
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, 21, 5, 7, generator=g) * scale
    head = tvm.PersonProbability(_FixedLogits(logits))
    x = torch.zeros(1, 3, 5, 7)
    ref = head(x)
    fast = head.fast_variant()(x)
    assert torch.isfinite(fast).all()
    assert float(fast.min()) >= 0.0 and float(fast.max()) <= 1.0
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-6)


def test_env_var_weights(random_model, monkeypatch):
    name, _, path = random_model
    monkeypatch.setenv(f"BGKIT_{name.upper()}_WEIGHTS", str(path))
    assert bgkit.get_spec(name).is_available()
    seg = bgkit.load_segmenter(name, device="cpu")
    assert seg.segment_person(np.zeros((20, 30, 3), np.uint8)).mask.shape == (20, 30)


@pytest.mark.parametrize(
    "resolution, expected",
    [("low", (120, 160)), ("medium", (240, 320)), ("high", (360, 480)), ("full", (480, 640)),
     (None, (240, 320)), (0.1, (48, 64)), (0.33, (160, 216))],
)
def test_internal_resolution_sets_model_input_size(resolution, expected):
    seg = bgkit.load_segmenter("lraspp", device="cpu", weights=_random_state("lraspp"))
    assert seg.model_input_size(480, 640, resolution) == expected


def test_pipeline_shapes_thresholds_and_flip(random_model):
    name, state, _ = random_model
    seg = bgkit.load_segmenter(name, device="cpu", weights=state)
    img = np.random.default_rng(1).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    for res in ("low", "medium", "full", 0.6):
        s = seg.segment_person(img, internal_resolution=res)
        assert (s.height, s.width) == (45, 70)
        assert s.probabilities.dtype == np.float32 and s.mask.dtype == np.uint8
        assert 0.0 <= s.probabilities.min() and s.probabilities.max() <= 1.0
        assert s.model == name and s.elapsed_ms > 0
    s0 = seg.segment_person(img, segmentation_threshold=0.0)
    s1 = seg.segment_person(img, segmentation_threshold=1.0)
    assert s1.mask.sum() == 0
    np.testing.assert_array_equal(s0.mask, (s0.probabilities > 0).astype(np.uint8))
    sf = seg.segment_person(img, flip_horizontal=True)
    np.testing.assert_array_equal(sf.probabilities, np.fliplr(s0.probabilities))
    with pytest.raises(ValueError, match="segmentation_threshold"):
        seg.segment_person(img, segmentation_threshold=1.5)
    with pytest.raises(ValueError, match="internal_resolution"):
        seg.segment_person(img, internal_resolution="ultra")


def test_tiny_and_odd_images_work(random_model):
    name, state, _ = random_model
    seg = bgkit.load_segmenter(name, device="cpu", weights=state)
    for shape in ((1, 1, 3), (3, 200, 3), (17, 5)):
        s = seg.segment_person(np.zeros(shape, np.uint8), internal_resolution="low")
        assert s.mask.shape == shape[:2]


def test_offline_error_is_clear_and_quick(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty hub cache
    monkeypatch.delenv("BGKIT_DEEPLABV3_WEIGHTS", raising=False)
    assert not bgkit.get_spec("deeplabv3").is_available()
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        bgkit.load_segmenter("deeplabv3", device="cpu")
    assert time.monotonic() - t0 < 20
    msg = str(info.value)
    assert str(tvm.hub_cache_path("deeplabv3")) in msg
    assert "BGKIT_DEEPLABV3_WEIGHTS" in msg and "selfie" in msg


def test_bad_weights_files(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        bgkit.load_segmenter("deeplabv3", device="cpu", weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="junk.pth is not a PyTorch weights file"):
        bgkit.load_segmenter("deeplabv3", device="cpu", weights=junk)
    wrong = tmp_path / "wrong.pth"
    torch.save(_random_state("lraspp"), wrong)
    with pytest.raises(WeightsUnavailableError, match="do not fit"):
        bgkit.load_segmenter("deeplabv3", device="cpu", weights=wrong)
    with pytest.raises(TypeError, match="weights must be"):
        bgkit.load_segmenter("deeplabv3", device="cpu", weights=42)
