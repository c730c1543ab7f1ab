"""BodyPix as a bgkit segmenter: load_segmenter, its BodyPix API, the pipeline's part effects and
people, and fetching the published files (from a mirror: the offline copies in shared/models)."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

import bgkit
from bgkit.cli import main
from bgkit.models.bodypix.segmenter import BODYPIX_VARIANTS
from bgkit.ops.parts import FACE_PART_IDS
from bodypix_fixtures import MODEL_ROOT, fixture_arrays, fixture_index, model_json, picture, unpack_mask

AGREEMENT = 0.999


def _load(backend: str) -> bgkit.Segmenter:
    path = model_json("q075s16")
    if not path.exists():
        pytest.skip(f"model file {path} not present")
    return bgkit.load_segmenter("bodypix", weights=path, device="cpu", backend=backend)


@pytest.fixture(scope="module", params=["torch", "auto"])
def segmenter(request) -> bgkit.Segmenter:
    """BodyPix's default variant (0.75, stride 16, quant2), eager and on the fast backend."""
    return _load(request.param)


@pytest.fixture(scope="module")
def bodypix_default() -> bgkit.Segmenter:
    return _load("auto")


def _cases(variant: str, resolutions=("low", "medium", "full")) -> list[str]:
    cases = fixture_index()["cases"]
    return [cid for cid, e in cases.items() if e["variant"] == variant and e.get("has_person_mask")
            and e["resolution"] in resolutions and e["image"] in ("vik_001", "vik_050", "vik_250")]


@pytest.mark.parametrize("cid", _cases("q075s16"))
def test_segment_person_is_bodypix_own_answer(segmenter, cid: str) -> None:
    """``segment_person`` through load_segmenter (the pipeline's path, incl. the fast backend) gives
    TF.js BodyPix's own mask at its default threshold on >= 99.9 % of pixels."""
    e = fixture_index()["cases"][cid]
    img = picture(e["image"])
    ref = unpack_mask(fixture_arrays(e["variant"])[f"{cid.split('/', 1)[1]}/mask"], img.shape[:2])
    seg = segmenter.segment_person(img, internal_resolution=e["resolution"])
    assert seg.threshold == 0.7 and seg.model_input_size == tuple(e["internal_hw"])
    agree = float((seg.mask == ref.astype(bool)).mean())
    assert agree >= AGREEMENT, f"{cid}: {agree:.5%}"


@pytest.mark.parametrize("cid", _cases("q075s16", ("medium",)))
def test_segment_person_parts(segmenter, cid: str) -> None:
    e = fixture_index()["cases"][cid]
    img = picture(e["image"])
    ref = fixture_arrays(e["variant"])[f"{cid.split('/', 1)[1]}/parts"]
    seg = segmenter.segment_person_parts(img, internal_resolution="medium")
    assert isinstance(seg, bgkit.Segmentation)
    assert seg.part_ids.shape == img.shape[:2] and seg.part_ids.min() >= -1 and seg.part_ids.max() <= 23
    assert float((seg.part_ids == ref).mean()) >= AGREEMENT
    np.testing.assert_array_equal(seg.part_ids >= 0, seg.mask)


def test_bad_threshold_names_the_value(segmenter) -> None:
    with pytest.raises(ValueError, match="segmentation_threshold"):
        segmenter.segment_person_parts(picture("vik_001"), segmentation_threshold=1.5)


def test_part_effects_through_the_pipeline(segmenter) -> None:
    img = picture("vik_001")
    p = bgkit.Pipeline(segmenter, effect="parts", opacity=1.0)
    seg = p.segment(img)
    assert seg.part_ids is not None and seg.part_ids.shape == img.shape[:2]
    parts = p.render(img, seg)
    assert parts.shape == img.shape and parts.dtype == np.uint8
    person = seg.part_ids >= 0
    assert len(np.unique(parts[person].reshape(-1, 3), axis=0)) >= 5  # several part colours
    np.testing.assert_array_equal(parts[~person], 255)  # BodyPix colours the background white

    p.update(effect="blur_face")
    out = p.process(img).picture
    face = np.isin(seg.part_ids, FACE_PART_IDS)
    assert face.any()
    near_face = np.zeros_like(face)
    ys, xs = np.nonzero(face)
    near_face[max(ys.min() - 40, 0):ys.max() + 40, max(xs.min() - 40, 0):xs.max() + 40] = True
    changed = np.abs(out.astype(int) - img).max(axis=2) > 0
    assert changed[face].mean() > 0.5 and not changed[~near_face].any()

    p.update(effect="pixelated", pixel_cell_width=8)
    assert p.process(img).picture.shape == img.shape


def test_part_effects_need_a_part_model(selfie) -> None:
    with pytest.raises(ValueError, match="body parts.*bodypix"):
        bgkit.Pipeline(selfie, effect="blur_face").process(np.zeros((64, 64, 3), np.uint8))


def _two_people() -> tuple[np.ndarray, int]:
    """A smaller person on the left, a bigger one on the right, and the column between them."""
    from PIL import Image

    def at_height(rgb: np.ndarray, h: int) -> np.ndarray:
        return np.asarray(Image.fromarray(rgb).resize((round(rgb.shape[1] * h / rgb.shape[0]), h), Image.BILINEAR))

    small, big = at_height(picture("vik_003"), 200), at_height(picture("vik_050"), 300)
    canvas = np.full((300, small.shape[1] + big.shape[1] + 40, 3), 128, np.uint8)
    canvas[100:, :small.shape[1]] = small
    canvas[:, -big.shape[1]:] = big
    return canvas, small.shape[1] + 20


@pytest.mark.parametrize("model", ["bodypix", "selfie"])
def test_only_the_main_person(request, model: str) -> None:
    """people="largest" keeps the bigger person (right), "centre" the one nearest the middle,
    for BodyPix (its own instance split) and for a model without one (connected components)."""
    seg_model = request.getfixturevalue("bodypix_default" if model == "bodypix" else "selfie")
    img, half = _two_people()
    p = bgkit.Pipeline(seg_model, effect="cutout")
    everyone = p.segment(img).mask
    assert everyone[:, :half].mean() > 0.1 and everyone[:, half:].mean() > 0.1
    p.update(people="largest")
    s = p.segment(img)
    assert s.mask[:, :half].mean() < 0.01 and s.mask[:, half:].mean() > 0.1
    assert s.alpha[:, : half - 20].max() < 0.05
    out = p.process(img).picture
    assert out.shape == (*img.shape[:2], 4) and out[:, : half - 20, 3].max() <= 12


def test_models_lists_variants_and_fetch_uses_the_mirror(tmp_path, monkeypatch, capsys) -> None:
    if not MODEL_ROOT.is_dir():
        pytest.skip(f"{MODEL_ROOT} not present")
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BGKIT_BODYPIX_URL", MODEL_ROOT.parent.as_uri())
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in BODYPIX_VARIANTS:
        assert any(line.startswith(name + " ") and "weights not here" in line for line in listing.splitlines())
    assert main(["fetch", "bodypix_050"]) == 0
    assert "bodypix_050: ready" in capsys.readouterr().out
    cached = tmp_path / "cache" / "bodypix" / "mobilenet" / "quant2" / "050"
    assert sorted(f.name for f in cached.iterdir()) == ["group1-shard1of1.bin", "model-stride16.json"]
    main(["models"])
    assert any(line.startswith("bodypix_050 ") and "weights here" in line
               for line in capsys.readouterr().out.splitlines())
    seg = bgkit.load_segmenter("bodypix_050", device="cpu", backend="torch")
    assert seg.segment_person(picture("vik_001")).mask.any()


def test_fetch_refuses_a_file_with_the_wrong_checksum(tmp_path, monkeypatch, capsys) -> None:
    src = MODEL_ROOT / "quant2" / "050"
    if not src.is_dir():
        pytest.skip(f"{src} not present")
    mirror = tmp_path / "mirror" / "mobilenet" / "quant2" / "050"
    shutil.copytree(src, mirror)
    shard = mirror / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BGKIT_BODYPIX_URL", (tmp_path / "mirror").as_uri())
    assert main(["fetch", "bodypix_050"]) == 1
    err = capsys.readouterr().err
    assert "bodypix_050: NOT available" in err and "sha256" in err.lower()
    assert hashlib.sha256(shard.read_bytes()).hexdigest() in err
    assert not list((tmp_path / "cache").rglob("*.bin"))  # nothing half-written or wrong left behind
