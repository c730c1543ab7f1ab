"""Speed benchmark: ``python -m bgkit.bench`` (a script, not a test).

For each model x internal resolution x backend, on a 640x480 frame: median and p95 milliseconds per
frame for segmentation alone and for segmentation plus compositing (the "mask" effect, and
bokeh), after warm-up, with the plain eager PyTorch path measured in the same run as the
baseline. Prints a table and writes JSON. Models whose pretrained weights are not on this machine
run with stand-in weights (:mod:`bgkit.models.standin`: random, batch-norm calibrated): the
timing of a network does not depend on its weight values, and the rows say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..pipeline.settings import EffectSettings
from ..io.sample import sample_image
from ..models.backends import onnxruntime_available, openvino_available
from ..models.registry import get_spec
from ..models.segmenter import Segmenter, load_segmenter
from ..models.standin import stand_in_state_dict
from ..pipeline import render


def _frame(width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.array(Image.fromarray(sample_image()).resize((width, height), Image.BILINEAR))


def _weights_for(name: str) -> tuple[dict | None, str]:
    """(weights, note): the model's own weights where on this machine, else stand-ins (labelled)."""
    if name.startswith("selfie") or get_spec(name).is_available():
        return None, ""
    return stand_in_state_dict(name), "stand-in weights (timing only)"


def _summary(times: list[float]) -> tuple[float, float]:
    return float(np.median(times)), float(np.percentile(times, 95))


def bench_backends(
    segs: dict[str, Segmenter], frame: np.ndarray, resolution: Any, warmup: int, runs: int, rounds: int = 5
) -> dict[str, dict]:
    """Timings (ms) of each backend's segmenter at one internal resolution on ``frame``.

    The backends take turns: ``rounds`` rounds, each timing ``runs / rounds`` frames per backend
    and measurement, so a machine that speeds up or slows down during the run (shared hosts do)
    affects every backend alike and the ratios stay fair.
    """
    mask = EffectSettings(effect="mask", internal_resolution=resolution)
    bokeh = EffectSettings(effect="bokeh", internal_resolution=resolution)
    jobs = {}
    for backend, seg in segs.items():
        s = seg.segment_person(frame, internal_resolution=resolution)
        jobs[backend] = {
            "segment": lambda seg=seg: seg.segment_person(frame, internal_resolution=resolution),
            "end_to_end_mask": lambda seg=seg: render(frame, seg.segment_person(frame, internal_resolution=resolution), mask),
            "end_to_end_bokeh": lambda seg=seg: render(frame, seg.segment_person(frame, internal_resolution=resolution), bokeh),
            "compositing_mask": lambda s=s: render(frame, s, mask),
        }
        for fn in jobs[backend].values():
            for _ in range(warmup):
                fn()
    times: dict[str, dict[str, list[float]]] = {b: {k: [] for k in j} for b, j in jobs.items()}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for backend, fns in jobs.items():
            for kind, fn in fns.items():
                fn()  # one untimed call: the previous backend's caches and threads settle
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    fn()
                    times[backend][kind].append((time.perf_counter() - t0) * 1000.0)
    out = {}
    for backend, seg in segs.items():
        w, h = seg.model_input_size(frame.shape[0], frame.shape[1], resolution)[::-1]
        row: dict[str, Any] = {"model_input": f"{w}x{h}", "frames_timed": per_round * rounds}
        for kind, ts in times[backend].items():
            med, p95 = _summary(ts)
            row[f"{kind}_ms_median"] = med
            if kind != "compositing_mask":
                row[f"{kind}_ms_p95"] = p95
        out[backend] = row
    return out


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: peak RSS is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_soak(seg: Segmenter, frame: np.ndarray, frames: int) -> dict:
    """Run ``frames`` consecutive frames end to end; RSS after warm-up vs at the end (MiB)."""
    settings = EffectSettings(effect="bokeh")
    warm = min(100, frames // 10)
    for _ in range(warm):
        render(frame, seg.segment_person(frame), settings)
    start = _rss_mb()
    samples = []
    for i in range(frames):
        render(frame, seg.segment_person(frame), settings)
        if i % max(1, frames // 20) == 0:
            samples.append(_rss_mb())
    end = _rss_mb()
    return {"frames": frames, "rss_after_warmup_mib": start, "rss_end_mib": end, "growth_mib": end - start,
            "growth_second_half_mib": end - samples[len(samples) // 2], "rss_samples_mib": samples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bgkit.bench", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="selfie,deeplabv3,lraspp", help="comma-separated model names")
    p.add_argument("--resolutions", default="default,low,medium,high,full",
                   help="internal resolutions ('default' = the model's own)")
    p.add_argument("--backends", default="eager,torch,onnxruntime,openvino", help="backends to time")
    p.add_argument("--size", default="640x480", help="frame WIDTHxHEIGHT")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5, help="backends take turns this many times (fair ratios)")
    p.add_argument("--memory-frames", type=int, default=0, help="also run N frames and report RSS growth")
    p.add_argument("--json", type=Path, default=Path("out/bench.json"), help="where to write the JSON")
    args = p.parse_args(argv)

    width, height = (int(v) for v in args.size.lower().split("x"))
    frame = _frame(width, height)
    installed = {"onnxruntime": onnxruntime_available(), "openvino": openvino_available()}
    backends = [b for b in args.backends.split(",") if installed.get(b, True)]
    rows: list[dict] = []
    print(f"{'model':17s} {'res':7s} {'input':8s} {'backend':12s} {'seg ms':>14s} {'seg+mask ms':>14s} "
          f"{'seg+bokeh ms':>14s} {'vs eager':>8s}")
    for name in args.models.split(","):
        weights, note = _weights_for(name)
        segs = {b: load_segmenter(name, device="cpu", weights=weights, backend=b) for b in backends}
        for res_name in args.resolutions.split(","):
            res = None if res_name == "default" else (float(res_name) if res_name[0].isdigit() else res_name)
            timed = bench_backends(segs, frame, res, args.warmup, args.runs, args.rounds)
            base = timed["eager"]["end_to_end_mask_ms_median"] if "eager" in timed else None
            for backend, r in timed.items():
                speedup = base / r["end_to_end_mask_ms_median"] if base else float("nan")
                r.update(model=name, internal_resolution=res_name, backend=backend, speedup_vs_eager=speedup, note=note)
                rows.append(r)
                print(f"{name:17s} {res_name:7s} {r['model_input']:8s} {backend:12s} "
                      f"{r['segment_ms_median']:6.1f} /{r['segment_ms_p95']:6.1f} "
                      f"{r['end_to_end_mask_ms_median']:6.1f} /{r['end_to_end_mask_ms_p95']:6.1f} "
                      f"{r['end_to_end_bokeh_ms_median']:6.1f} /{r['end_to_end_bokeh_ms_p95']:6.1f} "
                      f"{speedup:7.2f}x {note}", flush=True)
    result: dict[str, Any] = {
        "frame": f"{width}x{height}", "runs": args.runs, "warmup": args.warmup, "rounds": args.rounds, "unit": "ms (median / p95)",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__},
        "rows": rows,
    }
    if args.memory_frames:
        name = args.models.split(",")[0]
        seg = load_segmenter(name, device="cpu", weights=_weights_for(name)[0], backend="auto")
        result["memory"] = memory_soak(seg, frame, args.memory_frames)
        m = result["memory"]
        print(f"memory: {name}, {seg.backend} backend, {m['frames']} frames, RSS {m['rss_after_warmup_mib']:.0f} -> {m['rss_end_mib']:.0f} MiB "
              f"(growth {m['growth_mib']:+.1f} MiB; second half {m['growth_second_half_mib']:+.1f} MiB)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
