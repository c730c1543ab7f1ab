"""Unit tests: TF.js graph reader, network structure, TF.js resampling semantics, resolution rules."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import bodypix_fixtures  # noqa: F401
from bgkit.models.bodypix.net import (
    BodyPixMobileNet,
    layer_specs_from_graph,
    load_bodypix_mobilenet,
    mobilenet_layer_specs,
)
from bgkit.models.bodypix.bodypix import (
    Padding,
    crop_and_resize,
    decode_part_ids,
    input_resolution,
    internal_resolution_fraction,
    pad_and_resize,
    resize_bilinear,
    scale_and_crop_to_input,
    scale_and_crop_to_input_exact,
    valid_input_resolution,
)
from bgkit.models.bodypix.tfjs_graph import read_tfjs_graph

from bodypix_fixtures import MODEL_ROOT
FILES = [(q, m, s) for q, m in (("float", "050"), ("quant2", "050"), ("quant2", "075")) for s in (8, 16)]
needs_models = pytest.mark.skipif(not MODEL_ROOT.exists(), reason="BodyPix model files not present")


def _path(q: str, m: str, s: int) -> Path:
    return MODEL_ROOT / q / m / f"model-stride{s}.json"


# ---------------------------------------------------------------------------------------------
# graph reader


@needs_models
@pytest.mark.parametrize("q,m,s", FILES)
def test_graph_structure_is_bodypix_mobilenet(q: str, m: str, s: int) -> None:
    g = read_tfjs_graph(_path(q, m, s))
    assert layer_specs_from_graph(g) == mobilenet_layer_specs(int(m) / 100, s)
    assert [o.name for o in g.outputs][:2] == ["float_short_offsets", "float_segments"]
    if s == 8:  # TF.js reads dilations [2, 2, 1, 1] as (rows 2, columns 1)
        dil = {sp.name: sp.dilation for sp in layer_specs_from_graph(g) if sp.kind == "depthwise"}
        assert dil["Conv2d_7_depthwise"] == (2, 1) and dil["Conv2d_13_depthwise"] == (2, 1)
        assert dil["Conv2d_6_depthwise"] == (1, 1)


@needs_models
def test_uint16_dequantisation_matches_manifest() -> None:
    path = _path("quant2", "075", 16)
    doc = json.loads(path.read_text())
    specs = doc["weightsManifest"][0]["weights"]
    data = (path.parent / doc["weightsManifest"][0]["paths"][0]).read_bytes()
    g = read_tfjs_graph(path)
    offset = 0
    for spec in specs[:5]:
        n = int(np.prod(spec["shape"]))
        q = np.frombuffer(data, "<u2", n, offset)
        want = (q.astype(np.float64) * spec["quantization"]["scale"] + spec["quantization"]["min"]).astype(np.float32)
        np.testing.assert_array_equal(g.weights[spec["name"]].reshape(-1), want)
        assert g.quantization[spec["name"]]["dtype"] == "uint16"
        offset += 2 * n


def _copy_model(tmp_path: Path, q: str = "float", m: str = "050", s: int = 16) -> Path:
    src = _path(q, m, s)
    for f in (src, src.parent / "group1-shard1of1.bin"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / src.name


@needs_models
def test_foreign_files_raise_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "notjson.json"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="not a TF.js model.json"):
        read_tfjs_graph(bad)
    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps({"modelTopology": {"class_name": "Sequential", "config": {}},
                                  "weightsManifest": [], "format": "layers-model"}))  # fmt: skip
    with pytest.raises(ValueError, match="graph model"):
        read_tfjs_graph(layers)
    model = _copy_model(tmp_path)
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ValueError, match="bytes"):
        read_tfjs_graph(model)


@needs_models
def test_unknown_quantisation_and_wrong_module(tmp_path: Path) -> None:
    model = _copy_model(tmp_path, "quant2", "050", 16)
    doc = json.loads(model.read_text())
    doc["weightsManifest"][0]["weights"][0]["quantization"]["dtype"] = "int4"
    model.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="quantization"):
        read_tfjs_graph(model)
    g = read_tfjs_graph(_path("quant2", "075", 16))
    net = BodyPixMobileNet(mobilenet_layer_specs(0.5, 16), 16)
    with pytest.raises(ValueError, match="layer structure"):
        net.load_tfjs_graph(g)


@needs_models
def test_load_checks_file_name_stride(tmp_path: Path) -> None:
    model = _copy_model(tmp_path, "float", "050", 8)
    renamed = model.with_name("model-stride16.json")
    model.rename(renamed)
    with pytest.raises(ValueError, match="stride"):
        load_bodypix_mobilenet(renamed)


@needs_models
def test_output_sizes_any_input() -> None:
    net = load_bodypix_mobilenet(_path("float", "050", 16))
    with torch.inference_mode():
        for h, w in ((33, 49), (40, 64), (17, 18)):
            out = net(torch.zeros(1, 3, h, w))
            assert out["segments"].shape == (1, 1, math.ceil(h / 16), math.ceil(w / 16))
            assert out["part_offsets"].min() >= 0 and out["part_offsets"].max() <= 1
        # symmetric padding (export mode) equals SAME at valid (odd) sizes
        x = torch.randn(1, 3, 65, 97)
        a = net(x)["segments"]
        net.set_symmetric_padding(True)
        b = net(x)["segments"]
        net.set_symmetric_padding(False)
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# resolution rules


def test_internal_resolution_rules() -> None:
    assert internal_resolution_fraction("medium") == 0.5
    assert internal_resolution_fraction(0.3) == 0.3
    for bad in ("huge", 0.05, 2.5, True):
        with pytest.raises(ValueError):
            internal_resolution_fraction(bad)  # type: ignore[arg-type]
    assert valid_input_resolution(240, 16) == 241
    assert valid_input_resolution(241, 16) == 241
    assert valid_input_resolution(160, 16) == 161  # floor(160/16)*16+1 can exceed the size
    assert valid_input_resolution(93.75, 16) == 81
    assert valid_input_resolution(257, 8) == 257
    assert input_resolution((480, 640), "medium", 16) == (241, 321)
    assert input_resolution((480, 640), "full", 8) == (481, 641)


# ---------------------------------------------------------------------------------------------
# TF.js resampling semantics (oracles written as plain loops over the TF.js CPU kernel formulas)


def _oracle_resize(img: np.ndarray, oh: int, ow: int, align: bool) -> np.ndarray:
    h, w, c = img.shape
    ry = (h - 1) / (oh - 1) if align and oh > 1 else h / oh
    rx = (w - 1) / (ow - 1) if align and ow > 1 else w / ow
    out = np.zeros((oh, ow, c))
    for r in range(oh):
        sy = ry * r
        y0 = max(0, math.floor(sy))
        fy = sy - y0
        y1 = min(h - 1, math.ceil(sy))
        for q in range(ow):
            sx = rx * q
            x0 = max(0, math.floor(sx))
            fx = sx - x0
            x1 = min(w - 1, math.ceil(sx))
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * fx
            bot = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * fx
            out[r, q] = top + (bot - top) * fy
    return out


def _oracle_crop(img: np.ndarray, box, ch: int, cw: int) -> np.ndarray:
    h, w, c = img.shape
    y1, x1, y2, x2 = (float(np.float32(v)) for v in box)
    hs = (y2 - y1) * (h - 1) / (ch - 1)
    ws = (x2 - x1) * (w - 1) / (cw - 1)
    out = np.zeros((ch, cw, c))
    for y in range(ch):
        yi = y1 * (h - 1) + y * hs
        if yi < 0 or yi > h - 1:
            continue
        t, b = math.floor(yi), math.ceil(yi)
        for x in range(cw):
            xi = x1 * (w - 1) + x * ws
            if xi < 0 or xi > w - 1:
                continue
            left, right = math.floor(xi), math.ceil(xi)
            top = img[t, left] + (img[t, right] - img[t, left]) * (xi - left)
            bot = img[b, left] + (img[b, right] - img[b, left]) * (xi - left)
            out[y, x] = top + (bot - top) * (yi - t)
    return out


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("src,dst", [((7, 9), (17, 5)), ((33, 21), (9, 40)), ((5, 5), (1, 3))])
def test_resize_bilinear_is_tfjs(src, dst, align: bool) -> None:
    rng = np.random.default_rng(0)
    img = rng.normal(size=(*src, 2))
    got = resize_bilinear(torch.from_numpy(img).permute(2, 0, 1)[None], dst, align_corners=align)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), _oracle_resize(img, *dst, align), atol=1e-12)


def test_crop_and_resize_is_tfjs_with_extrapolation() -> None:
    rng = np.random.default_rng(1)
    img = rng.normal(size=(11, 13, 2))
    for box in ((0.0, 0.1, 1.0, 0.9), (-0.2, 0.0, 1.1, 1.0), (0.3, 0.3, 0.3000001, 1.2)):
        got = crop_and_resize(torch.from_numpy(img).permute(2, 0, 1)[None], box, (7, 9))
        np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), _oracle_crop(img, box, 7, 9), atol=1e-12)


@pytest.mark.parametrize("hw,res,stride", [((450, 800), "medium", 16), ((183, 551), 0.37, 16), ((275, 183), "full", 8)])
def test_scale_and_crop_fast_equals_literal(hw, res, stride) -> None:
    ih, iw = input_resolution(hw, res, stride)
    _, pad = pad_and_resize(np.zeros((*hw, 3), np.uint8), (ih, iw))
    x = torch.randn(1, 3, (ih - 1) // stride + 1, (iw - 1) // stride + 1) * 5
    a = scale_and_crop_to_input(x, hw, (ih, iw), pad)
    b = scale_and_crop_to_input_exact(x, hw, (ih, iw), pad)
    assert a.shape == b.shape == (1, 3, *hw)
    assert float((a - b).abs().max()) < 5e-5
    assert torch.equal(a == 0, b == 0)


def test_float32_box_extrapolates_last_column() -> None:
    """TF.js keeps the crop box in float32; for 183 x 551 at 0.37 its last column falls outside -> 0."""
    hw = (183, 551)
    ih, iw = input_resolution(hw, 0.37, 16)
    _, pad = pad_and_resize(np.zeros((*hw, 3), np.uint8), (ih, iw))
    assert pad == Padding(1, 1, 0, 0)
    x = torch.full((1, 1, (ih - 1) // 16 + 1, (iw - 1) // 16 + 1), 3.0)
    y = scale_and_crop_to_input(x, hw, (ih, iw), pad)[0, 0]
    assert float(y[:, -1].abs().max()) == 0.0 and float(y[:, :-1].min()) > 0.9


def test_pad_and_resize_matches_reference_formula() -> None:
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)
    out, pad = pad_and_resize(img, (17, 33))
    assert pad == Padding(0, 0, 11, 11)  # round(0.5 * (33/17 * 37 - 50)) = round(10.9)
    padded = np.zeros((37, 72, 3))
    padded[:, 11:61] = img
    want = _oracle_resize(padded, 17, 33, False)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), want, atol=1e-4)


def test_part_ids_first_max_and_mask() -> None:
    p = torch.zeros(1, 24, 2, 2)
    p[0, 3, 0, 0] = p[0, 5, 0, 0] = 0.9  # tie -> first
    p[0, 7, 1, 1] = 0.5
    mask = torch.tensor([[[1, 1], [0, 1]]], dtype=torch.uint8)
    ids = decode_part_ids(p, mask)
    assert ids.tolist() == [[[3, 0], [-1, 7]]]
