"""Fast inference paths give the same result as the plain eager PyTorch path.

Guard from the speed work: on the dev photos every backend's mask has IoU >= 0.999 with the eager
mask and probabilities within 1e-3, for the real selfie model and the real torchvision
architectures (stand-in weights: random but batch-norm calibrated, so that the probabilities span
0..1 with real mask boundaries and the comparison means something).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import bgkit
from bgkit.models import backends
from bgkit.models.standin import stand_in_state_dict


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


FAST = ("torch", "onnxruntime", "openvino")


def _weights(name: str):
    return None if name.startswith("selfie") else stand_in_state_dict(name)


@pytest.fixture(scope="module", params=["selfie", "deeplabv3", "lraspp"])
def model_set(request, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path_factory.mktemp("onnx")))
    name = request.param
    w = _weights(name)
    return name, {b: bgkit.load_segmenter(name, device="cpu", weights=w, backend=b)
                  for b in FAST + ("eager",)}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_backends_resolve_and_report():
    cpu = torch.device("cpu")
    assert backends.resolve_backend("auto", cpu) == "openvino"  # installed here, and the fastest
    assert backends.resolve_backend("auto", torch.device("cuda")) == "torch"
    with pytest.raises(ValueError, match="runs on the CPU"):
        backends.resolve_backend("openvino", torch.device("cuda"))
    with pytest.raises(ValueError, match="backend must be one of"):
        backends.resolve_backend("tensorrt", cpu)
    with pytest.raises(ValueError, match="backend must be one of"):
        bgkit.load_segmenter("selfie", backend="tvm")


def test_auto_falls_back_by_what_is_installed(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setitem(backends._PACKAGES, "openvino", lambda: False)
    assert backends.resolve_backend("auto", cpu) == "onnxruntime"
    with pytest.raises(ValueError, match=r"pip install 'bgkit\[fast\]'"):
        backends.resolve_backend("openvino", cpu)
    monkeypatch.setitem(backends._PACKAGES, "onnxruntime", lambda: False)
    assert backends.resolve_backend("auto", cpu) == "torch"


@pytest.mark.parametrize("resolution", [None, "low", "high", 0.33])
def test_fast_paths_match_eager_on_dev_photos(model_set, dev_rows, resolution):
    name, segs = model_set
    assert [s.backend for s in segs.values()] == list(FAST) + ["eager"]
    rows = dev_rows if resolution is None else dev_rows[::4]
    for row in rows:
        ref = segs["eager"].segment_person(row["image"], internal_resolution=resolution, segmentation_threshold=0.5)
        for backend in FAST:
            got = segs[backend].segment_person(row["image"], internal_resolution=resolution, segmentation_threshold=0.5)
            diff = float(np.abs(got.probabilities - ref.probabilities).max())
            assert diff <= 1e-3, (name, backend, row["stem"], diff)
            if ref.mask.any():
                assert _iou(got.mask, ref.mask) >= 0.999, (name, backend, row["stem"])


def test_onnx_export_is_cached_by_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path))
    a = bgkit.load_segmenter("selfie", device="cpu", backend="onnxruntime")
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1 and files[0].name.startswith("selfie-")
    mtime = files[0].stat().st_mtime_ns
    b = bgkit.load_segmenter("selfie", device="cpu", backend="onnxruntime")
    assert files[0].stat().st_mtime_ns == mtime  # reused, not re-exported
    assert a._run.onnx_file == b._run.onnx_file
    landscape = bgkit.load_segmenter("selfie_landscape", device="cpu", backend="onnxruntime")
    assert len(list(tmp_path.glob("*.onnx"))) == 2 and landscape._run.onnx_file != a._run.onnx_file


def test_onnx_exports_live_in_the_cache_folder_with_a_checksum_record(tmp_path, monkeypatch):
    monkeypatch.delenv("BGKIT_ONNX_CACHE_DIR", raising=False)
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "mine" / "lraspp-finetuned.pth"
    weights.parent.mkdir()
    torch.save(stand_in_state_dict("lraspp"), weights)
    seg = bgkit.load_segmenter("lraspp", device="cpu", weights=str(weights), backend="onnxruntime")
    assert seg._run.onnx_file.parent == tmp_path / "cache" / "onnx"
    assert list(weights.parent.iterdir()) == [weights]  # nothing is written into the user's folder
    assert backends.verified_export(seg._run.onnx_file)
    # in-memory weights go to the same place, named by their hash
    mem = bgkit.load_segmenter("lraspp", device="cpu", weights=stand_in_state_dict("lraspp", seed=1), backend="openvino")
    assert mem._run.onnx_file.parent == tmp_path / "cache" / "onnx" and mem._run.onnx_file != seg._run.onnx_file


@pytest.mark.parametrize("damage", ["truncated", "planted"])
def test_a_damaged_or_planted_export_is_rebuilt_not_trusted(damage, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path))
    first = bgkit.load_segmenter("selfie", device="cpu", backend="onnxruntime")
    path = first._run.onnx_file
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), np.uint8)
    want = first.segment_person(img).probabilities
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    else:  # a foreign model with the expected name: every pixel "person"
        import onnx
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])
        y = helper.make_tensor_value_info("person", TensorProto.FLOAT, ["n", 1, "h", "w"])
        one = helper.make_node("ReduceMax", ["image"], ["m"], keepdims=1, axes=[1])
        sig = helper.make_node("Sigmoid", ["m"], ["s"])
        ceil = helper.make_node("Ceil", ["s"], ["person"])
        onnx.save(helper.make_model(helper.make_graph([one, sig, ceil], "planted", [x], [y]),
                                    opset_imports=[helper.make_opsetid("", 13)]), str(path))
        # even with a forged checksum record, the probe against the model catches it
        import hashlib, json

        path.with_name(path.name + ".json").write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
    with caplog.at_level("WARNING", logger="bgkit"):
        again = bgkit.load_segmenter("selfie", device="cpu", backend="onnxruntime")
    assert again.backend == "onnxruntime" and again._run.onnx_file == path
    assert backends.verified_export(path)
    np.testing.assert_allclose(again.segment_person(img).probabilities, want, atol=1e-5)
    assert "exporting it again" in caplog.text


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_broken_export_falls_back_to_torch(backend, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path))

    def boom(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(backends, "export_onnx", boom)
    with caplog.at_level("WARNING", logger="bgkit"):
        seg = bgkit.load_segmenter("selfie", device="cpu", backend=backend)
    assert seg.backend == "torch"
    assert "exporter exploded" in caplog.text
    assert seg.segment_person(np.zeros((20, 20, 3), np.uint8)).mask.shape == (20, 20)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_one_compiled_graph_per_input_shape(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path))
    seg = bgkit.load_segmenter("selfie", device="cpu", backend=backend)
    cache = seg._run.sessions if backend == "onnxruntime" else seg._run.requests
    cache.max_shapes = 2
    img = np.random.default_rng(0).integers(0, 256, (96, 128, 3), np.uint8)
    ref = seg.segment_person(img, internal_resolution=1.0).probabilities
    for scale in (1.0, 0.5, 0.7):  # model inputs 96x128, 48x64, 80x96 (multiples of 16)
        seg.segment_person(img, internal_resolution=scale)
    assert list(cache.items) == [((1, 3, 48, 64),), ((1, 3, 80, 96),)]  # the oldest evicted
    again = seg.segment_person(img, internal_resolution=1.0).probabilities  # re-made on demand
    np.testing.assert_array_equal(again, ref)
