#!/usr/bin/env python
"""Files per second of a batch: the naive loop, the local engine and the Ray engine, side by side.

Makes ``--photos`` photos of ``--size`` (default 60 of 640x480) from the bundled sample (mirrored,
cropped and scaled differently, saved as JPEG) in ``--dir``, then times, in turns, round after
round (so a machine that drifts affects all alike):

* naive: the sequential in-process loop -- the model loaded once, then for each file
  ``load_image`` -> ``Pipeline.process`` -> ``save_image``, one after another;
* local: :func:`bgkit.jobs.batch.process_batch` (``--workers`` photos at once, each decoded,
  processed and encoded in its own thread; scanning, manifest and output hashes included);
* ray: the same with ``engine="ray"`` on a local Ray instance with ``--ray-cpus`` CPUs (one worker
  per CPU). "total" includes starting the workers and loading the model on each; "steady" is the
  rate between the first and the last file back.

Every engine's outputs are checked against the naive loop's, byte for byte. Prints a table
(median and every round, files/s; the ratio to the naive loop in the same round), then the same
over the quiet rounds only -- those in which the rest of the machine used under ``--quiet`` cores
(from /proc/stat) while the naive loop and the local engine ran: on a shared machine, other
processes take a share of the CPU that grows with the number of threads each side runs, which
flatters the engine with more threads. JSON with ``--json``. Run it from the repository root::

    .venv/bin/python benchmarks/batch_fps.py                        # selfie, bokeh, 3 rounds
    .venv/bin/python benchmarks/batch_fps.py --effect cutout --rounds 5 --engines naive,local
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bgkit.tuning import tune_process  # noqa: E402 - before torch loads, as the command line does

tune_process()

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import bgkit  # noqa: E402
from bgkit.io.sample import sample_image  # noqa: E402
from bgkit.jobs.batch import output_name, process_batch  # noqa: E402


def make_photos(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """``n`` JPEG photos of ``size`` (W, H) from the sample: mirrored, cropped and scaled differently."""
    folder.mkdir(parents=True, exist_ok=True)
    src = Image.fromarray(sample_image())
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"photo_{i:04d}.jpg"
        paths.append(p)
        if p.exists():
            continue
        im = ImageOps.mirror(src) if i % 2 else src
        w, h = im.size
        s = 1.0 + 0.35 * rng.random()
        cw, ch = int(w / s), int(h / s)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im.crop((x, y, x + cw, y + ch)).resize(size, Image.BILINEAR).save(p, quality=90)
    return paths


def naive(pipe: bgkit.Pipeline, files: list[Path], out: Path, effect: str) -> float:
    """The sequential loop; returns seconds."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for f in files:
        bgkit.save_image(pipe.process(bgkit.load_image(f)).picture, out / output_name(f.name, "image", effect))
    return time.perf_counter() - t0


def local(pipe: bgkit.Pipeline, src: Path, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    s = process_batch(src, out, pipe, overwrite=True, progress=False, workers=workers)
    assert s.failed == 0, s
    return time.perf_counter() - t0


def on_ray(src: Path, out: Path, settings: bgkit.EffectSettings, model: str, cpus: int) -> tuple[float, float]:
    """(total seconds, steady files/s)."""
    times: list[float] = []
    t0 = time.perf_counter()
    s = process_batch(src, out, model, settings, engine="ray", overwrite=True, progress=False,
                      on_file=lambda rec: times.append(time.perf_counter()),
                      workers=cpus, ray={"batch_size": 4})
    total = time.perf_counter() - t0
    assert s.failed == 0, s
    first = times[0]
    later = [t for t in times if t > first]
    steady = (len(later) / (times[-1] - first)) if len(later) and times[-1] > first else float("nan")
    return total, steady


def _busy_jiffies() -> int:
    """CPU time all processes on this machine have used (clock ticks; Linux /proc/stat)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal


def timed(fn, *a):
    """(fn's result, seconds, CPU seconds this process used, cores the rest of the machine used
    meanwhile: how quiet it was)."""
    tick = os.sysconf("SC_CLK_TCK")
    b0, c0, t0 = _busy_jiffies(), time.process_time(), time.perf_counter()
    out = fn(*a)
    wall, mine = time.perf_counter() - t0, time.process_time() - c0
    others = max(0.0, (_busy_jiffies() - b0) / tick - mine) / wall
    return out, wall, mine, others


def same_files(a: Path, b: Path, names: list[str]) -> bool:
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--size", default="640x480", help="W x H of the photos (default 640x480)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ray-rounds", type=int, default=None, help="rounds of the Ray engine (default: --rounds)")
    ap.add_argument("--effect", default="bokeh", choices=bgkit.EFFECTS)
    ap.add_argument("--model", default="selfie")
    ap.add_argument("--workers", type=int, default=None, help="local engine: photos at once (threads; default: bgkit's, one more than the CPUs)")
    ap.add_argument("--engines", default="naive,local,ray")
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bgkit-batch-bench"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quiet", type=float, default=0.1,
                    help="a round is quiet when other processes used fewer cores than this (default 0.1)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    src = args.dir / f"in_{w}x{h}"
    files = make_photos(src, args.photos, (w, h))
    for stale in src.iterdir():  # a run with fewer photos than an earlier one
        if stale not in files:
            stale.unlink()
    names = [output_name(f.name, "image", args.effect) for f in files]
    settings = bgkit.EffectSettings(effect=args.effect)
    seg = bgkit.load_segmenter(args.model, device="cpu")
    pipe = bgkit.Pipeline(seg, settings)
    pipe.process(bgkit.load_image(files[0]))  # warm: the backend compiles for this size once
    load0 = os.getloadavg()[0]
    print(f"{len(files)} photos {w}x{h}, {args.model} ({seg.backend}), effect {args.effect}; "
          f"{os.cpu_count()} CPUs, torch threads {__import__('torch').get_num_threads()}; load average {load0:.2f}")
    rates: dict[str, list[float]] = {e: [] for e in engines}
    steady: list[float] = []
    ratios: dict[str, list[float]] = {e: [] for e in engines if e != "naive"}
    identical: dict[str, bool] = {e: True for e in engines if e != "naive"}
    ray = None
    if "ray" in engines:
        import logging

        import ray as ray_module
        import ray.data  # noqa: F401 - sets up its loggers when imported: quieted below

        ray = ray_module
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        t0 = time.perf_counter()
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING", configure_logging=False)
        print(f"ray.init(num_cpus={args.ray_cpus}): {time.perf_counter() - t0:.1f} s (not counted)")
    ray_rounds = args.ray_rounds if args.ray_rounds is not None else args.rounds
    quiet_rates: dict[str, list[float]] = {}
    cpu_ms: dict[str, list[float]] = {"naive": [], "local": []}
    quiet_ratios: dict[str, list[float]] = {}
    try:
        for r in range(args.rounds):
            order = engines if r % 2 == 0 else engines[::-1]
            this: dict[str, float] = {}
            noise: dict[str, float] = {}
            for e in order:
                out = args.dir / f"out_{e}"
                shutil.rmtree(out, ignore_errors=True)
                if e in ("naive", "local"):
                    _, secs, cpu, noise[e] = (timed(naive, pipe, files, out, args.effect) if e == "naive"
                                              else timed(local, pipe, src, out, args.workers))
                    this[e] = len(files) / secs
                    cpu_ms[e].append(1000.0 * cpu / len(files))
                elif e == "ray":
                    if r >= ray_rounds:
                        continue
                    total, st = on_ray(src, out, settings, args.model, args.ray_cpus)
                    this[e] = len(files) / total
                    steady.append(st)
                else:
                    raise SystemExit(f"unknown engine {e!r}; use naive, local, ray")
                rates[e].append(this[e])
            quiet = bool(noise) and max(noise.values()) < args.quiet
            if "naive" in this:
                for e in this:
                    if e != "naive":
                        ratios[e].append(this[e] / this["naive"])
                        identical[e] &= same_files(args.dir / "out_naive", args.dir / f"out_{e}", names)
                        if quiet:
                            quiet_ratios.setdefault(e, []).append(this[e] / this["naive"])
            if quiet:
                for e in noise:
                    quiet_rates.setdefault(e, []).append(this[e])
            print(f"round {r + 1}: " + ", ".join(f"{e} {v:.2f}" for e, v in this.items()) + " files/s; "
                  "other processes used " + ", ".join(f"{v:.2f}" for v in noise.values()) + " cores"
                  + (" (quiet)" if quiet else ""), flush=True)
    finally:
        if ray is not None:
            ray.shutdown()
    load1 = os.getloadavg()[0]
    print()
    print(f"{'engine':8s} {'files/s (median)':>17s} {'x naive (median)':>17s}  rounds (files/s)      same files")
    result = {"photos": len(files), "size": [w, h], "effect": args.effect, "model": args.model,
              "backend": seg.backend, "cpus": os.cpu_count(), "load_average": [load0, load1], "engines": {}}
    for e in engines:
        if not rates[e]:
            continue
        med = statistics.median(rates[e])
        ratio = statistics.median(ratios[e]) if ratios.get(e) else None
        same = "" if e == "naive" else ("yes" if identical[e] else "NO")
        rounds = ", ".join(f"{v:.2f}" for v in rates[e])
        print(f"{e:8s} {med:17.2f} {'' if ratio is None else f'{ratio:.2f}x':>17s}  {rounds:20s}  {same}")
        result["engines"][e] = {"files_per_s": med, "rounds": rates[e], "ratio_to_naive": ratio,
                                "ratios": ratios.get(e), "same_files_as_naive": identical.get(e)}
    for e, v in cpu_ms.items():
        if v:
            print(f"{e}: {statistics.median(v):.1f} CPU ms per file (all its threads; median)")
            result["engines"][e]["cpu_ms_per_file"] = statistics.median(v)
    if quiet_rates:
        n = len(next(iter(quiet_rates.values())))
        print(f"quiet rounds only ({n} of {args.rounds}: the rest of the machine used < {args.quiet:g} cores "
              "while naive and local ran):")
        for e, v in quiet_rates.items():
            ratio = f"{statistics.median(quiet_ratios[e]):.2f}x" if e in quiet_ratios else ""
            print(f"{e:8s} {statistics.median(v):17.2f} {ratio:>17s}  {', '.join(f'{x:.2f}' for x in v)}")
            result["engines"][e]["quiet"] = {"files_per_s": statistics.median(v), "rounds": v,
                                             "ratio_to_naive": statistics.median(quiet_ratios[e])
                                             if e in quiet_ratios else None}
    else:
        print(f"no quiet round (the rest of the machine used >= {args.quiet:g} cores in every one)")
    if steady:
        med = statistics.median(steady)
        print(f"{'ray':8s} {med:17.2f} {'':>17s}  steady state: after the first file back (workers started, "
              f"models loaded)")
        result["engines"]["ray"]["steady_files_per_s"] = med
    print(f"load average before/after: {load0:.2f} / {load1:.2f} (other processes on this machine skew it)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if all(identical.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
