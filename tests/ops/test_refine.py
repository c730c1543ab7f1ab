"""bgkit.refine: box filter, fast guided filter, and the measured gain of edge refinement on the dev photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bgkit
from bgkit.eval.evaluate import evaluate_frames
from bgkit import EffectSettings
from bgkit.ops.refine import box_filter, guided_filter, refine_segmentation
from bgkit.core.segmentation import Segmentation


@pytest.mark.parametrize("r", [1, 2, 5, 40])
def test_box_filter_is_a_clipped_window_mean(r):
    x = torch.rand(1, 3, 23, 31, dtype=torch.float64)
    if 2 * r + 1 <= 2 * min(23, 31):
        k = 2 * r + 1
        ref = F.avg_pool2d(x, k, stride=1, padding=r, count_include_pad=False) if r <= k // 2 else None
        torch.testing.assert_close(box_filter(x, r), ref)
    # brute force on one pixel near a corner
    i, j = 2, 29
    win = x[..., max(0, i - r): i + r + 1, max(0, j - r): j + r + 1]
    torch.testing.assert_close(box_filter(x, r)[..., i, j], win.mean(dim=(-2, -1)))
    torch.testing.assert_close(box_filter(x, 0), x)


@pytest.mark.parametrize("subsample", [1, 2.5, 4])
@pytest.mark.parametrize("grey", [False, True])
def test_guided_filter_preserves_constants(subsample, grey):
    rng = np.random.default_rng(0)
    guide = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    if grey:
        guide = guide[..., 0]
    for c in (0.0, 0.3, 1.0):
        q = guided_filter(guide, np.full((40, 56), c, np.float32), radius=4, eps=1e-3, subsample=subsample)
        assert q.dtype == np.float32 and q.shape == (40, 56)
        np.testing.assert_allclose(q, c, atol=2e-5)


def test_guided_filter_reproduces_a_linear_function_of_the_guide():
    rng = np.random.default_rng(1)
    guide = rng.random((30, 30)).astype(np.float32)
    p = 0.2 + 0.5 * guide  # exactly linear in the guide: a = 0.5, b = 0.2 (up to eps)
    q = guided_filter(guide, p, radius=3, eps=1e-6, subsample=1)
    np.testing.assert_allclose(q, p, atol=1e-3)


def _step_scene(h=48, w=96, edge=50, centre=47):
    """A dark/bright step at column ``edge``; a probability that is a soft ramp centred a bit off it."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:, edge:] = (220, 200, 180)
    image[:, :edge] = (30, 40, 50)
    x = np.arange(w, dtype=np.float32)
    ramp = np.clip((x - centre + 6) / 12.0, 0, 1)  # 0 -> 1 over 12 columns around ``centre``
    probs = np.repeat(ramp[None], h, axis=0)
    truth = np.zeros((h, w), bool)
    truth[:, edge:] = True
    return image, probs, truth


@pytest.mark.parametrize("subsample", [1, 2])
def test_guided_filter_is_edge_aware_on_a_step(subsample):
    image, probs, truth = _step_scene()
    q = guided_filter(image, probs, radius=8, eps=1e-4, subsample=subsample)
    # the soft ramp becomes a jump exactly at the image's edge...
    jump_p = float(np.diff(probs, axis=1).max())
    jump_q = np.diff(q, axis=1)
    assert jump_p < 0.09
    assert int(np.argmax(jump_q[20])) == 49 and float(jump_q[:, 49].min()) > 0.3
    # ... so the thresholded mask moves from the ramp's middle (column 47) onto the edge (50)
    assert ((probs > 0.5) != truth).sum(axis=1).min() >= 2
    assert np.array_equal(q > 0.5, truth)
    # without edges in the guide nothing is snapped: the ramp is only smoothed
    flat = guided_filter(np.full_like(image, 128), probs, radius=8, eps=1e-4, subsample=subsample)
    assert float(np.diff(flat, axis=1).max()) <= jump_p + 1e-6
    assert not np.array_equal(flat > 0.5, truth)


def test_refine_segmentation_keeps_metadata_and_scales_with_the_model():
    image, probs, truth = _step_scene(h=96, w=192, edge=100, centre=97)
    seg = Segmentation.from_probabilities(probs, 0.6, model="m", model_input_size=(24, 48), elapsed_ms=5.0)
    out = refine_segmentation(image, seg)
    assert out.threshold == 0.6 and out.model == "m" and out.model_input_size == (24, 48)
    assert out.elapsed_ms >= 5.0 and out.probabilities.dtype == np.float32
    np.testing.assert_array_equal(out.mask, (out.probabilities > 0.6).astype(np.uint8))
    assert (out.mask.astype(bool) == truth).mean() > (seg.mask.astype(bool) == truth).mean()
    assert "refine" in out.timings
    with pytest.raises(ValueError, match="size mismatch"):
        refine_segmentation(image[:50], seg)
    with pytest.raises(TypeError):
        refine_segmentation(image, probs)
    with pytest.raises(ValueError):
        guided_filter(image, probs, radius=0)
    with pytest.raises(ValueError):
        guided_filter(image, probs, radius=2, subsample=0.5)
    with pytest.raises(ValueError):
        guided_filter(image, probs[:, :10])


@pytest.mark.slow
def test_refinement_lowers_the_edge_error_and_keeps_the_iou_on_the_dev_photos(dev_rows, selfie):
    """Acceptance: on the dev photos, edge refinement lowers the edge-band alpha error and keeps the
    boundary F and the IoU within 0.005 (measured at the selfie model's default threshold 0.5,
    10 photos with people: alpha error 0.1479 -> 0.1463, IoU 0.8705 -> 0.8699)."""
    photos = [(r["stem"], r["image"], r["mask"]) for r in dev_rows]
    raw = evaluate_frames(photos, selfie, EffectSettings(refine_edges=False), label="raw")
    refined = evaluate_frames(photos, selfie, EffectSettings(), label="refined")
    print(f"\nraw: IoU {raw.mean_iou_person:.4f} F {raw.mean_boundary_f:.4f} alpha err {raw.mean_alpha_error:.4f}; "
          f"refined: IoU {refined.mean_iou_person:.4f} F {refined.mean_boundary_f:.4f} "
          f"alpha err {refined.mean_alpha_error:.4f}")
    assert len(refined.frames) == 13
    assert refined.mean_alpha_error < raw.mean_alpha_error
    assert refined.mean_boundary_f >= raw.mean_boundary_f - 0.005
    assert refined.mean_iou_person >= raw.mean_iou_person - 0.005


def test_cli_effect_refines_unless_told_not_to(data_dir, tmp_path):
    from PIL import Image

    from bgkit import cli
    from bgkit import process_frame

    photo = data_dir / "images" / "vik_003.jpg"
    seg = bgkit.load_segmenter("selfie", device="cpu")
    for flag, refine in (([], True), (["--no-refine"], False)):
        out = tmp_path / f"cut{len(flag)}.png"
        assert cli.main(["effect", str(photo), "-o", str(out), "--effect", "cutout", "--model", "selfie",
                         "--edge-blur", "0"] + flag) == 0
        expected, _ = process_frame(photo, seg, EffectSettings(effect="cutout", edge_blur_amount=0,
                                                               refine_edges=refine))
        np.testing.assert_array_equal(np.asarray(Image.open(out))[..., 3], expected[..., 3])
