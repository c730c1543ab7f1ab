"""MediaPipe Selfie Segmentation ported to PyTorch: parity with TFLite, any input size, dev-set quality.

The real ``.tflite`` files are used (fetched once into the bgkit cache: Google's URL, else the
``mediapipe==0.10.14`` wheel from PyPI). The reference is ``ai_edge_litert``'s interpreter on the
same file and the same input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bgkit
from bgkit.models.downloads import selfie_model_path
from bgkit.models import selfie as S
from bgkit.models.tflite_graph import read_tflite

VARIANTS = ("general", "landscape")
#: Bounds on |PyTorch - TFLite| of the output probability at the native size, on every dev image
#: (measured worst pixel: 5.7e-5, the DAVIS goat), plus a mean bound that catches any real
#: semantic difference.
PARITY_ATOL = 1e-4
PARITY_MEAN = 1e-6


@pytest.fixture(scope="module")
def tflite_paths() -> dict[str, object]:
    return {v: selfie_model_path(v) for v in VARIANTS}


@pytest.fixture(scope="module")
def nets(tflite_paths) -> dict[str, S.SelfieSegmentationNet]:
    return {v: S.SelfieSegmentationNet.from_tflite(p) for v, p in tflite_paths.items()}


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 -> 1 x 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # plain bilinear, like MediaPipe's ImageToTensorCalculator (whole frame stretched, no letterbox)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def test_graph_reader_sees_the_expected_ops(tflite_paths):
    for variant, path in tflite_paths.items():
        g = read_tflite(path)
        counts = g.op_counts()
        assert "DEQUANTIZE" not in counts  # fp16 constants folded to float32
        assert counts["CONV_2D"] == 43 and counts["DEPTHWISE_CONV_2D"] == 11
        assert counts["Convolution2DTransposeBias"] == 1 and counts["RESIZE_BILINEAR"] == 3
        pool = "AVERAGE_POOL_2D" if variant == "general" else "MEAN"
        assert counts[pool] == 10
        h, w = S.NATIVE_SIZES[variant]
        assert g.tensor(g.inputs[0]).shape == (1, h, w, 3)
        assert g.tensor(g.outputs[0]).shape == (1, h, w, 1)
        for op in g.ops:
            if op.opcode == "RESIZE_BILINEAR":
                assert op.options["align_corners"] is False and op.options["half_pixel_centers"] is True
            if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w_ = g.const(op.inputs[1])
                assert w_.dtype == np.float32 and op.options["fused_activation_function"] == "NONE"


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_tflite_at_the_native_size(variant, tflite_paths, nets, dev_rows):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_paths[variant]))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    size = S.NATIVE_SIZES[variant]
    net = nets[variant]
    diffs, means, person = {}, {}, set()
    for row in dev_rows:
        x = _resize(_to_tensor(row["image"]), size)
        interp.set_tensor(inp["index"], x.permute(0, 2, 3, 1).contiguous().numpy())
        interp.invoke()
        ref = interp.get_tensor(out["index"])[0, :, :, 0]
        with torch.no_grad():
            got = net(S.normalize(x))
        assert got.shape == (1, 1, *size)
        diff = np.abs(got[0, 0].numpy() - ref)
        diffs[row["stem"]], means[row["stem"]] = float(diff.max()), float(diff.mean())
        if row["has_person"]:
            person.add(row["stem"])
        # the person masks agree wherever TFLite is not within the bound of the 0.5 threshold
        clear = np.abs(ref - 0.5) > PARITY_ATOL
        assert np.array_equal((got[0, 0].numpy() > 0.5)[clear], (ref > 0.5)[clear])
    worst = max(diffs, key=diffs.get)
    worst_person = max(person, key=diffs.get)
    print(
        f"\n{variant}: max |torch - tflite| = {diffs[worst]:.2e} ({worst}), people photos "
        f"{diffs[worst_person]:.2e} ({worst_person}), mean {np.mean(list(means.values())):.1e}, "
        f"{len(diffs)} images"
    )
    assert len(diffs) == 13 and len(person) == 10
    assert diffs[worst] <= PARITY_ATOL, diffs
    assert max(means.values()) <= PARITY_MEAN, means


def test_batch_and_single_agree(nets, dev_rows):
    x = torch.cat([_resize(_to_tensor(r["image"]), (256, 256)) for r in dev_rows[:3]])
    with torch.no_grad():
        batch = nets["general"](x)
        single = torch.cat([nets["general"](x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=PARITY_ATOL, rtol=0)  # float32 noise


def test_valid_size_rounds_up_to_multiples_of_16():
    assert S.SIZE_MULTIPLE == 16
    assert S.valid_size(256, 256) == (256, 256)
    assert S.valid_size(144, 256) == (144, 256)
    assert S.valid_size(250, 333) == (256, 336)
    assert S.valid_size(1, 17) == (16, 32)
    with pytest.raises(ValueError):
        S.valid_size(0, 10)


@pytest.mark.parametrize("size", [(480, 640), (240, 320), (250, 333), (97, 131), (31, 17), (1, 1), (144, 256)])
def test_any_input_size_gives_an_output_of_that_size(size, nets):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for net in nets.values():
            y = net(x)
            assert y.shape == (2, 1, *size)
            assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("stem", ["vik_280", "vik_289"])
def test_other_sizes_give_a_mask_like_the_native_one(stem, nets, dev_rows):
    row = next(r for r in dev_rows if r["stem"] == stem)
    img = _to_tensor(row["image"])
    h, w = row["image"].shape[:2]
    net = nets["general"]
    with torch.no_grad():
        native = F.interpolate(net(_resize(img, (256, 256))), size=(h, w), mode="bilinear")[0, 0].numpy() > 0.5
        ious = {}
        for size in [(480, 640), (240, 320), (250, 333)]:
            prob = F.interpolate(net(_resize(img, size)), size=(h, w), mode="bilinear")[0, 0].numpy()
            ious[size] = _iou(prob > 0.5, native)
    print(f"\n{stem}: IoU vs native-size mask {ious}")
    assert min(ious.values()) > 0.8, ious


def test_registry_entries(tflite_paths):
    for name, variant in (("selfie", "general"), ("selfie_landscape", "landscape")):
        spec = bgkit.get_spec(name)
        assert spec.native_size == S.NATIVE_SIZES[variant]
        assert spec.default_internal_resolution is None
        assert spec.mean == (0.0, 0.0, 0.0) and spec.std == (1.0, 1.0, 1.0)
        assert spec.size_multiple == 16 and spec.licence == "Apache-2.0"
        assert "mediapipe" in spec.weights_source.lower()
        assert spec.is_available()  # the fixture put the file in the cache
        module = spec.build(tflite_paths[variant], torch.device("cpu"))
        assert isinstance(module, S.SelfieSegmentationNet) and not module.training
    with pytest.raises(FileNotFoundError):
        bgkit.get_spec("selfie").build("/nonexistent/selfie.tflite", torch.device("cpu"))


def test_dev_set_quality_through_segment_person(tflite_paths, dev_rows):
    seg = bgkit.load_segmenter("selfie", device="cpu")
    ious: dict[float, list[float]] = {0.5: [], 0.7: []}
    for row in dev_rows:
        if not row["has_person"]:
            continue
        for t in ious:
            s = seg.segment_person(row["image"], segmentation_threshold=t)
            assert s.model_input_size == (256, 256)
            ious[t].append(_iou(s.mask.astype(bool), row["mask"]))
    means = {t: float(np.mean(v)) for t, v in ious.items()}
    print(f"\nselfie dev-set mean IoU over {len(ious[0.5])} person images: {means}")
    assert len(ious[0.5]) == 10
    assert means[0.5] >= 0.85 and means[0.7] >= 0.85, means
