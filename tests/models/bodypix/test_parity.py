"""Parity of the PyTorch BodyPix port with the original TF.js library (fixtures in tests/fixtures).

Tolerances (not to be loosened): raw model outputs within 1e-3 (absolute) of TF.js; person masks
and part maps identical on >= 99.9 % of pixels; multi-person: same number of people, per-person
mask IoU >= 0.99, keypoints within 1 pixel. The pose decoder and the instance-mask decoder are
also run on TF.js's own raw outputs, where they must reproduce the library's poses to 1e-6 px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bodypix_fixtures import bodypix, fixture_arrays, fixture_index, picture, unpack_mask
from bgkit.models.bodypix.bodypix import Padding, RawPrediction, input_resolution, scale_and_crop_to_input, to_mask
from bgkit.models.bodypix.multi_person import decode_instance_masks

LOGIT_TOL = 1e-3
PIXEL_AGREEMENT = 0.999
IOU_MIN = 0.99
KEYPOINT_TOL_PX = 1.0


def _cases(pred) -> list[str]:
    try:
        cases = fixture_index()["cases"]
    except FileNotFoundError:
        return []
    return sorted(cid for cid, e in cases.items() if pred(cid, e))


def _entry(cid: str) -> tuple[dict, dict[str, np.ndarray], str]:
    e = fixture_index()["cases"][cid]
    return e, fixture_arrays(e["variant"]), cid.split("/", 1)[1]


def _ref_poses(a: dict[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray]:
    return a[f"{key}/keypoints"], a[f"{key}/scores"]


def _raw_from_fixture(e: dict, a: dict[str, np.ndarray], key: str, stride: int) -> RawPrediction:
    outs = {h: torch.from_numpy(a[f"{key}/raw/{h}"]).permute(2, 0, 1)[None] for h in e["heads"]}
    return RawPrediction(outs, tuple(e["image_hw"]), tuple(e["internal_hw"]), Padding(**e["padding"]), stride)


def _assert_poses_close(poses, ref_kp: np.ndarray, ref_scores: np.ndarray, what: str) -> None:
    """Same number of poses; keypoints within KEYPOINT_TOL_PX; keypoint and pose scores within 1e-3."""
    assert len(poses) == len(ref_scores), f"{what}: {len(poses)} poses, TF.js found {len(ref_scores)}"
    for k, (p, kp, s) in enumerate(zip(poses, ref_kp, ref_scores)):
        d = np.abs(p.keypoints[:, :2] - kp[:, :2]).max()
        assert d <= KEYPOINT_TOL_PX, f"{what}: pose {k} keypoints off by {d:.3g} px"
        ds = np.abs(p.keypoints[:, 2] - kp[:, 2]).max()
        assert ds <= 1e-3 and abs(p.score - s) <= 1e-3, f"{what}: pose {k} scores off by {ds:.3g} / {abs(p.score - s):.3g}"


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cid", _cases(lambda c, e: bool(e["heads"])))
def test_raw_outputs(cid: str) -> None:
    """Every stored head (logits, offsets, displacements) within 1e-3 of TF.js at model resolution."""
    e, a, key = _entry(cid)
    bp = bodypix(e["variant"])
    img = picture(e["image"])
    raw = bp.predict(img, e["resolution"])
    assert list(raw.internal_hw) == e["internal_hw"]
    assert raw.padding == Padding(**e["padding"])
    for head in e["heads"]:
        ref = a[f"{key}/raw/{head}"]
        mine = raw.hwc(head)
        assert mine.shape == ref.shape, f"{head}: {mine.shape} vs {ref.shape}"
        diff = float(np.abs(mine - ref).max())
        assert diff <= LOGIT_TOL, f"{cid} {head}: max |diff| {diff:.3g} > {LOGIT_TOL}"


@pytest.mark.parametrize("cid", _cases(lambda c, e: "has_person_mask" in e))
def test_person_mask_and_parts(cid: str) -> None:
    """segment_person / segment_person_parts agree with TF.js on >= 99.9 % of pixels; same geometry."""
    e, a, key = _entry(cid)
    bp = bodypix(e["variant"])
    img = picture(e["image"])
    h, w = img.shape[:2]
    assert list(input_resolution((h, w), e["resolution"], bp.output_stride)) == e["internal_hw"]
    ref_parts = a[f"{key}/parts"]
    parts = bp.segment_person_parts(img, e["resolution"])
    agree = float((parts.part_ids == ref_parts).mean())
    assert agree >= PIXEL_AGREEMENT, f"{cid}: part ids agree on {agree:.5%} of pixels"
    if e.get("has_person_mask"):
        ref_mask = unpack_mask(a[f"{key}/mask"], (h, w))
        seg = bp.segment_person(img, e["resolution"], decode_poses=False)
        assert seg.mask.dtype == np.uint8 and seg.mask.shape == (h, w)
        agree = float((seg.mask == ref_mask).mean())
        assert agree >= PIXEL_AGREEMENT, f"{cid}: person mask agrees on {agree:.5%} of pixels"
    else:
        ref_mask = (ref_parts >= 0).astype(np.uint8)
    agree = float(((parts.part_ids >= 0) == (ref_mask == 1)).mean())
    assert agree >= PIXEL_AGREEMENT, f"{cid}: mask from parts agrees on {agree:.5%} of pixels"
    kp, sc = _ref_poses(a, f"{key}/parts_poses")
    _assert_poses_close(parts.poses, kp, sc, f"{cid} allPoses")


@pytest.mark.parametrize("cid", _cases(lambda c, e: "heatmaps" in e["heads"]))
def test_pose_decoder_on_tfjs_outputs(cid: str) -> None:
    """decode_multiple_poses on TF.js's raw outputs reproduces the library's poses (to 1e-6 px)."""
    e, a, key = _entry(cid)
    bp = bodypix(e["variant"])
    raw = _raw_from_fixture(e, a, key, bp.output_stride)
    poses = bp.estimate_poses(raw, 10, 0.4, 20)
    if "multi" in key:
        poses = [p for p in poses if p.score >= 0.4]
        kp, sc = _ref_poses(a, f"{key}/multi_poses")
    else:
        kp, sc = _ref_poses(a, f"{key}/parts_poses")
    assert len(poses) == len(sc)
    for p, k, s in zip(poses, kp, sc):
        np.testing.assert_allclose(p.keypoints, k, rtol=0, atol=1e-6)
        assert abs(p.score - s) <= 1e-9


@pytest.mark.parametrize("cid", _cases(lambda c, e: "multi" in c and "long_offsets" in e["heads"]))
def test_instance_masks_on_tfjs_outputs(cid: str) -> None:
    """The instance-mask decoder on TF.js's raw outputs gives TF.js's per-person masks (IoU >= 0.99)."""
    e, a, key = _entry(cid)
    bp = bodypix(e["variant"])
    raw = _raw_from_fixture(e, a, key, bp.output_stride)
    kp, sc = _ref_poses(a, f"{key}/multi_poses")
    poses = [p for p in bp.estimate_poses(raw, 10, 0.4, 20) if p.score >= 0.4]
    probs = scale_and_crop_to_input(raw.outputs["segments"], raw.image_hw, raw.internal_hw, raw.padding)
    mask = to_mask(probs[0, 0], 0.7).numpy()
    masks = decode_instance_masks(mask, raw.hwc("long_offsets"), poses, bp.output_stride, raw.internal_hw,
                                  raw.padding, 10)  # fmt: skip
    assert len(masks) == len(sc)
    for k, m in enumerate(masks):
        ref = unpack_mask(a[f"{key}/multi_mask/{k}"], raw.image_hw)
        iou = (m & ref).sum() / max((m | ref).sum(), 1)
        assert iou >= IOU_MIN, f"{cid}: person {k} IoU {iou:.4f}"


@pytest.mark.parametrize("cid", _cases(lambda c, e: "multi" in c))
def test_multi_person_end_to_end(cid: str) -> None:
    """segment_multi_person[_parts]: same people as TF.js, IoU >= 0.99, keypoints within 1 px."""
    e, a, key = _entry(cid)
    bp = bodypix(e["variant"])
    img = picture(e["image"])
    hw = img.shape[:2]
    people = bp.segment_multi_person(img, e["resolution"])
    kp, sc = _ref_poses(a, f"{key}/multi_poses")
    _assert_poses_close([p.pose for p in people], kp, sc, cid)
    for k, p in enumerate(people):
        ref = unpack_mask(a[f"{key}/multi_mask/{k}"], hw)
        iou = (p.mask & ref).sum() / max((p.mask | ref).sum(), 1)
        assert iou >= IOU_MIN, f"{cid}: person {k} IoU {iou:.4f}"
    people_parts = bp.segment_multi_person_parts(img, e["resolution"])
    kp, sc = _ref_poses(a, f"{key}/multi_parts_poses")
    _assert_poses_close([p.pose for p in people_parts], kp, sc, cid + " parts")
    for k, p in enumerate(people_parts):
        ref = a[f"{key}/multi_parts/{k}"]
        agree = float((p.part_ids == ref).mean())
        assert agree >= PIXEL_AGREEMENT, f"{cid}: person {k} part ids agree on {agree:.5%}"
