"""Make the BodyPix parity fixtures: decode the pictures, run make_fixtures.js, pack the outputs.

    .venv/bin/python tests/models/bodypix/reference/make_fixtures.py [--out tests/models/bodypix/fixtures] [--keep TMP]

Pictures are decoded here (PIL) to raw RGB in a temporary folder, Node runs the original
library on them (cpu backend), and the results are packed into one compressed ``.npz`` per
model variant plus ``index.json``. See tests/fixtures/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # tests/models/bodypix
sys.path.insert(0, str(ROOT))

import fixture_images  # noqa: E402

MODEL_ROOT = str(Path(__file__).resolve().parents[4].parent / "shared" / "models" / "bodypix" / "mobilenet")
VARIANTS = {
    "q075s16": {"quant": "quant2", "multiplier": 0.75, "stride": 16},  # BodyPix's default
    "f050s16": {"quant": "float", "multiplier": 0.5, "stride": 16},
    "f050s8": {"quant": "float", "multiplier": 0.5, "stride": 8},
}
RESOLUTIONS = ("low", "medium", "high", "full")
SEG_HEADS = ["segments", "part_heatmaps"]
POSE_HEADS = ["heatmaps", "short_offsets", "displacement_fwd", "displacement_bwd", "long_offsets"]
ALL_HEADS = SEG_HEADS + POSE_HEADS + ["part_offsets"]
MULTI_PICTURES = ("vik_280", "vik_289", "comp_003_050", "comp_001_077")
#: Store segment/part logits when the model output has at most this many positions.
RAW_SEG_MAX_POSITIONS = 700


def _valid(x: float, stride: int) -> int:
    if (x - 1) % stride == 0:
        return int(x)
    return int(x // stride) * stride + 1


def _positions(h: int, w: int, res: str, stride: int) -> int:
    f = {"low": 0.25, "medium": 0.5, "high": 0.75, "full": 1.0}[res]
    return ((_valid(h * f, stride) - 1) // stride + 1) * ((_valid(w * f, stride) - 1) // stride + 1)


def build_cases(shapes: dict[str, tuple[int, int]]) -> list[dict]:
    cases: list[dict] = []
    singles = [n for n in fixture_images.DEV_STEMS + ("astronaut",)]
    for v in ("q075s16", "f050s16"):
        for name in singles:
            h, w = shapes[name]
            for res in RESOLUTIONS:
                raw: list[str] = []
                if _positions(h, w, res, 16) <= RAW_SEG_MAX_POSITIONS:
                    raw = list(SEG_HEADS)
                if name == "astronaut" and res == "medium":
                    raw = list(ALL_HEADS)
                person = res in ("low", "medium") or h * w <= 320_000
                cases.append({"id": f"{v}/{name}/{res}", "variant": v, "image": name, "resolution": res,
                              "single": True, "person": person, "raw": raw, "multi": False})
        for name in MULTI_PICTURES:
            raw = SEG_HEADS + POSE_HEADS if v == "q075s16" else []
            cases.append({"id": f"{v}/{name}/multi-medium", "variant": v, "image": name,
                          "resolution": "medium", "single": name not in singles,
                          "person": name not in singles, "raw": raw, "multi": True})
    # Stride 8 (its dilated layers): two pictures, low and medium, plus a fractional resolution.
    for name in ("astronaut", "vik_003"):
        for res in ("low", "medium"):
            cases.append({"id": f"f050s8/{name}/{res}", "variant": "f050s8", "image": name,
                          "resolution": res, "single": True, "person": True, "raw": list(SEG_HEADS),
                          "multi": False})
    for v in ("q075s16", "f050s16"):
        cases.append({"id": f"{v}/vik_150/0.6", "variant": v, "image": "vik_150",
                      "resolution": 0.6, "single": True, "person": True, "raw": [], "multi": False})
    return cases


def _store_poses(a: dict[str, np.ndarray], key: str, poses: list[dict]) -> None:
    """Poses as float64 arrays: ``key/keypoints`` (N, 17, 3) = (x, y, score), ``key/scores`` (N,)."""
    a[f"{key}/keypoints"] = np.array([p["keypoints"] for p in poses], np.float64).reshape(-1, 17, 3)
    a[f"{key}/scores"] = np.array([p["score"] for p in poses], np.float64)


def pack(outdir_js: Path, cases: list[dict], shapes: dict[str, tuple[int, int]], out: Path) -> dict:
    arrays: dict[str, dict[str, np.ndarray]] = {v: {} for v in VARIANTS}
    index: dict[str, dict] = {}
    for c in cases:
        d = outdir_js / c["id"]
        meta = json.loads((d / "meta.json").read_text())
        h, w = shapes[c["image"]]
        key = c["id"].split("/", 1)[1]
        a = arrays[c["variant"]]
        entry = {
            "variant": c["variant"], "image": c["image"], "resolution": c["resolution"],
            "image_hw": [h, w], "internal_hw": meta["internal"],
            "padding": meta["padding"], "heads": {}, "tfjs_backend": meta["tfjs_backend"],
        }  # fmt: skip
        for name, shape in meta["heads"].items():
            arr = np.fromfile(d / f"raw_{name}.f32", dtype="<f4").reshape(shape)
            a[f"{key}/raw/{name}"] = arr
            entry["heads"][name] = shape
        if c["single"]:
            parts = np.fromfile(d / "parts.i32", dtype="<i4").reshape(h, w)
            assert parts.min() >= -1 and parts.max() <= 23
            a[f"{key}/parts"] = parts.astype(np.int8)
            _store_poses(a, f"{key}/parts_poses", meta["parts_poses"])
            if c["person"]:
                mask = np.fromfile(d / "mask.u8", dtype=np.uint8).reshape(h, w)
                assert set(np.unique(mask)) <= {0, 1}
                # segmentPerson and segmentPersonParts share the threshold: parts == -1 <=> mask == 0
                assert np.array_equal(mask, (parts >= 0).astype(np.uint8)), c["id"]
                a[f"{key}/mask"] = np.packbits(mask, axis=None)
                _store_poses(a, f"{key}/person_poses", meta["person_poses"])
            entry["has_person_mask"] = bool(c["person"])
        if c["multi"]:
            _store_poses(a, f"{key}/multi_poses", meta["multi_poses"])
            _store_poses(a, f"{key}/multi_parts_poses", meta["multi_parts_poses"])
            for k in range(len(meta["multi_poses"])):
                m = np.fromfile(d / f"multi_mask_{k}.u8", dtype=np.uint8).reshape(h, w)
                a[f"{key}/multi_mask/{k}"] = np.packbits(m, axis=None)
            for k in range(len(meta["multi_parts_poses"])):
                p = np.fromfile(d / f"multi_parts_{k}.i32", dtype="<i4").reshape(h, w)
                a[f"{key}/multi_parts/{k}"] = p.astype(np.int8)
        index[c["id"]] = entry
    out.mkdir(parents=True, exist_ok=True)
    for v, arrs in arrays.items():
        np.savez_compressed(out / f"{v}.npz", **arrs)
    return index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "fixtures")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep Node's raw output here (and reuse finished cases found there)")
    ap.add_argument("--only", default=None, help="regular expression: run only matching case ids (debugging)")
    ap.add_argument("--jobs", type=int, default=2, help="Node processes to run in parallel (default 2)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bodypix_fixtures_"))
    try:
        images, shapes, hashes = {}, {}, {}
        for name in fixture_images.ALL_NAMES:
            rgb = fixture_images.load(name)
            raw = tmp / "rgb" / f"{name}.rgb"
            raw.parent.mkdir(parents=True, exist_ok=True)
            rgb.tofile(raw)
            shapes[name] = rgb.shape[:2]
            images[name] = {"raw": str(raw), "height": rgb.shape[0], "width": rgb.shape[1]}
            hashes[name] = fixture_images.pixel_sha256(rgb)
        cases = build_cases(shapes)
        if args.only:
            cases = [c for c in cases if re.search(args.only, c["id"])]
        outdir_js = args.keep or (tmp / "out")
        procs = []
        for j in range(args.jobs):  # independent Node processes, cases dealt round-robin
            job = {"model_root": MODEL_ROOT, "backend": "cpu", "variants": VARIANTS, "images": images,
                   "cases": cases[j::args.jobs], "resume": args.keep is not None}  # fmt: skip
            (tmp / f"job{j}.json").write_text(json.dumps(job))
            procs.append(subprocess.Popen(["node", str(HERE / "make_fixtures.js"), str(tmp / f"job{j}.json"),
                                           str(outdir_js)], cwd=HERE))  # fmt: skip
        if any(p.wait() != 0 for p in procs):
            raise SystemExit("make_fixtures.js failed")
        index = pack(outdir_js, cases, shapes, args.out)
        versions = {}
        for pkg in ("@tensorflow-models/body-pix", "@tensorflow/tfjs-core", "@tensorflow/tfjs-converter",
                    "@tensorflow/tfjs-backend-cpu"):  # fmt: skip
            versions[pkg] = json.loads((HERE / "node_modules" / pkg / "package.json").read_text())["version"]
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        doc = {"versions": versions, "node": node, "backend": "cpu", "model_root": MODEL_ROOT,
               "variants": VARIANTS, "pixel_sha256": hashes, "cases": index}  # fmt: skip
        (args.out / "index.json").write_text(json.dumps(doc, indent=1))
        total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
        print(f"{len(cases)} cases -> {args.out} ({total / 1e6:.2f} MB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
