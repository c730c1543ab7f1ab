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
from bgkit import backends
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
    with pytest.raises(ValueError, match="pip install openvino"):
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


def test_onnx_export_sits_beside_the_weights_file(tmp_path, monkeypatch):
    monkeypatch.delenv("BGKIT_ONNX_CACHE_DIR", raising=False)
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "mine" / "lraspp-finetuned.pth"
    weights.parent.mkdir()
    torch.save(stand_in_state_dict("lraspp"), weights)
    seg = bgkit.load_segmenter("lraspp", device="cpu", weights=str(weights), backend="onnxruntime")
    beside = sorted(weights.parent.glob("*.onnx"))
    assert [p.name.startswith("lraspp-finetuned.pth.lraspp-") for p in beside] == [True]
    assert seg._run.onnx_file == beside[0]
    assert not (tmp_path / "cache").exists()  # nothing went to the cache folder
    # other weights in the same place get their own file; the first is left as it was
    mtime = beside[0].stat().st_mtime_ns
    torch.save(stand_in_state_dict("lraspp", seed=1), weights)
    again = bgkit.load_segmenter("lraspp", device="cpu", weights=weights, backend="openvino")
    assert len(list(weights.parent.glob("*.onnx"))) == 2 and again._run.onnx_file != beside[0]
    assert beside[0].stat().st_mtime_ns == mtime


def test_onnx_export_without_a_writable_weights_folder_goes_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("BGKIT_ONNX_CACHE_DIR", raising=False)
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "cache"))
    # weights given as a state dict in memory: no file to sit beside
    seg = bgkit.load_segmenter("lraspp", device="cpu", weights=stand_in_state_dict("lraspp"), backend="onnxruntime")
    assert seg._run.onnx_file.parent == tmp_path / "cache" / "onnx"
    # a weights file in a folder nobody may write to (root ignores chmod, so simulate the mount)
    weights = tmp_path / "ro" / "w.pth"
    weights.parent.mkdir()
    torch.save(stand_in_state_dict("lraspp"), weights)
    real = backends._writable_dir
    monkeypatch.setattr(backends, "_writable_dir", lambda folder: folder != weights.parent and real(folder))
    seg = bgkit.load_segmenter("lraspp", device="cpu", weights=weights, backend="onnxruntime")
    assert seg._run.onnx_file.parent == tmp_path / "cache" / "onnx"
    assert list(weights.parent.iterdir()) == [weights]
    # $BGKIT_ONNX_CACHE_DIR wins over both
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path / "chosen"))
    seg = bgkit.load_segmenter("lraspp", device="cpu", weights=weights, backend="onnxruntime")
    assert seg._run.onnx_file.parent == tmp_path / "chosen"


def test_writable_dir_is_tried_not_guessed(tmp_path):
    assert backends._writable_dir(tmp_path)
    assert not backends._writable_dir(tmp_path / "missing")
    assert not backends._writable_dir(Path("/proc/self"))  # read-only even for root
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_broken_export_falls_back_to_torch(backend, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path))

    def boom(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(backends, "export_onnx", boom)
    seg = bgkit.load_segmenter("selfie", device="cpu", backend=backend)
    assert seg.backend == "torch"
    assert "exporter exploded" in capsys.readouterr().err
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
    assert list(cache.items) == [(1, 3, 48, 64), (1, 3, 80, 96)]  # the oldest evicted
    again = seg.segment_person(img, internal_resolution=1.0).probabilities  # re-made on demand
    np.testing.assert_array_equal(again, ref)
