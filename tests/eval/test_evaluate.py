"""bgkit.eval.evaluate and bgkit.eval.metrics: metrics on hand-made masks, folders, the CLI, and the temporal-smoothing targets on real video."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import bgkit
from bgkit import cli
from conftest import scripted_segmenter
from bgkit import EffectSettings
from bgkit.eval.evaluate import evaluate, evaluate_frames, find_pairs, format_summary, is_numbered_sequence
from bgkit.eval.metrics import (boundary_f, boundary_map, dilate_disk, edge_band, edge_band_alpha_error, flicker_score,
                                flicker_series, iou)


def square(h=20, w=20, top=5, left=5, size=10):
    m = np.zeros((h, w), bool)
    m[top:top + size, left:left + size] = True
    return m


# -- IoU ---------------------------------------------------------------------------------------


def test_iou_known_values():
    a = square()
    assert iou(a, a) == 1.0
    b = square(left=10)  # half overlaps: 50 / 150
    assert iou(a, b) == pytest.approx(50 / 150)
    assert iou(a, np.zeros_like(a)) == 0.0
    assert iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0  # both empty: perfect
    assert iou(a.astype(np.uint8) * 255, a) == 1.0  # non-zero is person
    with pytest.raises(ValueError, match="shape"):
        iou(a, a[:5])


# -- boundary ----------------------------------------------------------------------------------


def test_boundary_map_of_a_square():
    b = boundary_map(square())
    # DAVIS seg2bmap marks the pixels whose right/lower/lower-right neighbour differs: the square's
    # last row and column inside (19), the column and row just before it outside, and their corner (21)
    assert b.sum() == 19 + 21
    assert b[4, 5] and b[14, 14] and not b[9, 9] and not b[0, 0]
    full = np.ones((6, 6), bool)
    assert boundary_map(full).sum() == 0  # the image border is no boundary


def _dilate_brute(b, r):
    h, w = b.shape
    out = np.zeros_like(b)
    ys, xs = np.nonzero(b)
    yy, xx = np.mgrid[0:h, 0:w]
    for y, x in zip(ys, xs):
        out |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_disk_dilation_matches_brute_force(seed, r):
    rng = np.random.default_rng(seed)
    b = rng.random((17, 23)) > 0.97
    np.testing.assert_array_equal(dilate_disk(b, r), _dilate_brute(b, r))


def _boundary_f_brute(p, g, r):
    bp, bg = boundary_map(p), boundary_map(g)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    prec = (bp & _dilate_brute(bg, r)).sum() / bp.sum()
    rec = (bg & _dilate_brute(bp, r)).sum() / bg.sum()
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def test_boundary_f_known_values():
    a = square(100, 100, 30, 30, 40)
    assert boundary_f(a, a) == (1.0, 1.0, 1.0)
    # tolerance: ceil(0.008 * diag(100x100)) = ceil(1.13) = 2 px
    assert boundary_f(square(100, 100, 30, 32, 40), a)[0] == 1.0  # 2 px off: within tolerance
    f, p, r = boundary_f(square(100, 100, 30, 35, 40), a)  # 5 px off: the vertical sides miss
    assert 0.3 < f < 0.7 and p == pytest.approx(r, abs=0.05)
    far = square(100, 100, 0, 0, 10)
    assert boundary_f(far, a)[0] == 0.0
    empty = np.zeros_like(a)
    assert boundary_f(empty, empty) == (1.0, 1.0, 1.0)
    assert boundary_f(empty, a) == (0.0, 1.0, 0.0)  # nothing found: recall 0
    assert boundary_f(a, empty) == (0.0, 0.0, 1.0)  # a person where there is none
    assert boundary_f(square(100, 100, 30, 35, 40), a, bound_th=5)[0] == 1.0  # tolerance in pixels


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_boundary_f_matches_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    h, w = 24, 31
    g = np.zeros((h, w), bool)
    y0, x0 = rng.integers(0, 12, 2)
    g[y0:y0 + rng.integers(4, 12), x0:x0 + rng.integers(4, 18)] = True
    p = g ^ (rng.random((h, w)) > 0.95)
    r = math.ceil(0.008 * math.hypot(h, w))
    assert boundary_f(p, g)[0] == pytest.approx(_boundary_f_brute(p, g, r))


# -- flicker -----------------------------------------------------------------------------------


def test_flicker_known_values():
    gt = [np.zeros((10, 10), bool)] * 3
    steady = [square(10, 10, 2, 2, 4)] * 3
    assert flicker_score(steady, gt) == 0.0
    blink = [square(10, 10, 2, 2, 4), np.zeros((10, 10), bool), square(10, 10, 2, 2, 4)]
    np.testing.assert_allclose(flicker_series(blink, gt), [0.16, 0.16])
    # pixels where the truth changed do not count: a person that moves, followed exactly
    moving_gt = [square(10, 10, 2, 0, 4), square(10, 10, 2, 1, 4)]
    assert flicker_score(moving_gt, moving_gt) == 0.0
    # the prediction changes 4 pixels, 4 of which are where the truth changed too -> 0
    # and one more pixel elsewhere: 1 / (100 - 8)
    pred = [moving_gt[0].copy(), moving_gt[1].copy()]
    pred[1][9, 9] = True
    assert flicker_score(pred, moving_gt) == pytest.approx(1 / 92)
    assert math.isnan(flicker_score(steady[:1], gt[:1]))
    with pytest.raises(ValueError):
        flicker_series(steady, gt[:2])


# -- folders, results --------------------------------------------------------------------------


def test_numbered_sequences_and_pairs(tmp_path):
    assert is_numbered_sequence(["00000", "00001", "00010"])
    assert is_numbered_sequence(["frame_1", "frame_2"])
    assert not is_numbered_sequence(["vik_001", "neg_davis"])
    assert not is_numbered_sequence(["a1", "b2"])  # different prefixes
    assert not is_numbered_sequence(["00001"])
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    for n in (10, 2, 1):
        Image.new("RGB", (8, 6)).save(tmp_path / "i" / f"f{n}.jpg")
        Image.new("L", (8, 6)).save(tmp_path / "m" / f"f{n}.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "i" / "f3.jpg")  # no mask: skipped
    assert [s for s, _, _ in find_pairs(tmp_path / "i", tmp_path / "m")] == ["f1", "f2", "f10"]
    with pytest.raises(FileNotFoundError):
        find_pairs(tmp_path / "nope", tmp_path / "m")


def jittering_ellipse(h=40, w=48, n=2):
    """A scripted model: an ellipse 'person' whose probability jitters from call to call."""
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((yy - h / 2) / (h * 0.3)) ** 2 + ((xx - w / 2) / (w * 0.25)) ** 2
    return scripted_segmenter([np.clip(1.3 - d + (i % 2) * 0.08, 0, 1) for i in range(n)], name="ellipse")


def _write_clip(root, n=6, h=40, w=48):
    (root / "frames").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[0:h, 0:w]
    truth = ((yy - h / 2) / (h * 0.3)) ** 2 + ((xx - w / 2) / (w * 0.25)) ** 2 < 0.7
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        img[truth] = (200, 180, 160)
        Image.fromarray(img).save(root / "frames" / f"{i:05d}.png")
        Image.fromarray(truth.astype(np.uint8) * 255).save(root / "masks" / f"{i:05d}.png")
    return root / "frames", root / "masks"


def test_evaluate_a_folder_as_video_and_as_photos(tmp_path):
    frames, masks = _write_clip(tmp_path)
    raw = evaluate(frames, masks, jittering_ellipse(), EffectSettings(refine_edges=False, temporal_smoothing=False))
    assert raw.kind == "video" and len(raw.frames) == 6 and len(raw.flicker) == 5
    assert raw.flicker_score > 0  # the stand-in jitters
    smooth = evaluate(frames, masks, jittering_ellipse(), EffectSettings(refine_edges=False))
    assert smooth.flicker_score < raw.flicker_score
    photos = evaluate(frames, masks, jittering_ellipse(), video=False, limit=3)
    assert photos.kind == "images" and len(photos.frames) == 3 and photos.flicker == []
    assert 0 < photos.mean_iou <= 1 and 0 <= photos.mean_boundary_f <= 1
    d = json.loads(smooth.to_json())
    assert d["kind"] == "video" and d["frames"] == 6 and len(d["per_frame"]) == 6
    assert d["settings"]["temporal_smoothing"] is True and d["flicker"] == pytest.approx(smooth.flicker_score)
    table = format_summary([raw, smooth])
    assert "flicker %" in table and "edge err" in table and len(table.splitlines()) == 3
    assert "00005" in photos.table() or "00002" in photos.table()


def test_evaluate_checks_sizes():
    gt = np.zeros((5, 5), bool)
    with pytest.raises(ValueError, match="mask"):
        evaluate_frames([("x", np.zeros((6, 5, 3), np.uint8), gt)], jittering_ellipse(6, 5))


def test_cli_evaluate_json_and_table(tmp_path, capsys):
    frames, masks = _write_clip(tmp_path, n=4)
    rc = cli.main(["evaluate", "--images", str(frames), "--masks", str(masks), "--model", "selfie", "--json",
                   "-q", "--compare", "--limit", "3"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in out] == ["raw masks", "+ refine", "+ smoothing", "+ both"]
    assert all(r["frames"] == 3 and r["kind"] == "video" and r["model"] == "selfie" for r in out)
    rc = cli.main(["evaluate", "--images", str(frames), "--masks", str(masks), "--model", "selfie", "--photos", "-q",
                   "--no-refine"])
    text = capsys.readouterr().out
    assert rc == 0 and "4 photos" in text and "mean IoU" in text and "00003" in text
    rc = cli.main(["evaluate", "--images", str(tmp_path / "none"), "--masks", str(masks)])
    assert rc == 2 and "no such folder" in capsys.readouterr().err


# -- acceptance: the dance clip ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dance(data_dir):
    clip = data_dir / "video" / "davis_dance-twirl"
    from bgkit.eval.evaluate import load_mask

    pairs = find_pairs(clip / "frames", clip / "masks")
    assert len(pairs) == 90
    return [(s, bgkit.load_image(ip), load_mask(mp)) for s, ip, mp in pairs]


@pytest.mark.slow
def test_defaults_halve_the_flicker_on_the_dance_clip_without_losing_iou(dance, selfie):
    """Acceptance: on the whole dance clip, the default smoothing (+ refinement) at least halves the
    flicker of the raw per-frame masks, and the mean IoU is at most 0.01 lower."""
    seg = selfie
    raw = evaluate_frames(dance, seg, EffectSettings(refine_edges=False, temporal_smoothing=False), video=True)
    default = evaluate_frames(dance, seg, EffectSettings(), video=True)
    smooth_only = evaluate_frames(dance, seg, EffectSettings(refine_edges=False), video=True)
    for name, r in (("raw", raw), ("smoothing", smooth_only), ("defaults", default)):
        print(f"\n{name:10s} IoU {r.mean_iou:.4f}  boundary F {r.mean_boundary_f:.4f}  flicker {100 * r.flicker_score:.3f} %",
              end="")
    assert len(default.frames) == 90 and len(default.flicker) == 89
    assert default.flicker_score <= 0.5 * raw.flicker_score
    assert default.mean_iou >= raw.mean_iou - 0.01
    assert smooth_only.flicker_score <= 0.5 * raw.flicker_score  # the smoother alone does it too
    assert default.mean_boundary_f >= smooth_only.mean_boundary_f  # and refinement sharpens its edges


def test_edge_band_alpha_error():
    gt = square()
    band = edge_band(gt, 2)
    assert band[5:15, 5:15].any() and not band[9:11, 9:11].any() and not band[0, 0]
    assert edge_band_alpha_error(gt.astype(np.float32), gt, 2) == 0.0
    assert edge_band_alpha_error(np.full(gt.shape, 0.5, np.float32), gt, 2) == pytest.approx(0.5)
    shifted = np.roll(gt, 1, axis=1).astype(np.float32)
    soft = (gt.astype(np.float32) + shifted) / 2  # half way: the soft edge errs less than the shifted one
    assert edge_band_alpha_error(soft, gt, 2) < edge_band_alpha_error(shifted, gt, 2)
    assert math.isnan(edge_band_alpha_error(np.zeros((4, 4)), np.zeros((4, 4), bool)))
