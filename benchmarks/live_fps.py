#!/usr/bin/env python
"""Frame rate and latency of the live camera loop, end to end.

Sets up what the browser test uses: a JupyterLab server, headless Chromium with a fake webcam
(the dev set's talking-head clip, 640x480), and a notebook showing ``LiveBackground``. Then, for
each model, internal resolution and transport, it lets the loop run for a fixed time and prints

* fps shown: processed frames drawn by the page per second;
* round trip p50 / p95: frame grabbed in the page -> processed picture drawn (ms);
* model ms p50 and kernel ms p50 (decode + process_frame + encode).

Run it from the repository root (needs ../shared/data and Chromium)::

    .venv/bin/python benchmarks/live_fps.py                       # selfie + deeplabv3, all resolutions
    .venv/bin/python benchmarks/live_fps.py --models selfie --resolutions medium --transports jpeg,rgba
    .venv/bin/python benchmarks/live_fps.py --offline             # no browser: protocol + processing only

deeplabv3 and lraspp run with stand-in weights (``bgkit.models.standin``: random, batch-norm
calibrated) when their pretrained weights are not on this machine (same network, same cost,
meaningless masks); the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

DEFAULT_CLIP = REPO.parent / "shared" / "data" / "video" / "talking_head_tfjs_facemesh.mp4"

BENCH_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code", "execution_count": None, "id": "bench", "metadata": {}, "outputs": [],
            "source": (
                "import bgkit\n"
                "from bgkit.widgets import LiveBackground\n"
                "from bgkit.pipeline import EffectSettings\n"
                "live = LiveBackground(bgkit.load_segmenter('selfie'),\n"
                "                      settings=EffectSettings(effect='%(effect)s', internal_resolution='medium', flip_horizontal=True))\n"
                "live"
            ),
        }
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}

# Kernel-side helper: load a model (stand-in weights for the torchvision ones if need be).
LOAD_MODEL = """
def _bench_load(name):
    import bgkit
    spec = bgkit.get_spec(name)
    if spec.is_available() or name.startswith('selfie'):
        return bgkit.load_segmenter(name), False
    from bgkit.models.standin import stand_in_state_dict
    return bgkit.load_segmenter(name, weights=stand_in_state_dict(name)), True
"""


PINGS_JS = """async () => {
    const h = document.querySelector('.bgkit-live').bgkitLive;
    const out = [];
    for (let i = 0; i < 30; i++) out.push(await h.ping());
    return out;
}"""


def _fmt(x: float | None, nd: int = 0) -> str:
    return "   -" if x is None else f"{x:.{nd}f}"


def run_browser(args: argparse.Namespace) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from browser.conftest import LabPage, launch_chromium, start_jupyter_lab
    from browser.test_live_browser import FAKE_CAMERA_ARGS, KernelPeek, hook_stats, make_fake_webcam_clip, wait_for

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bgkit-live-bench-") as tmp:
        tmp = Path(tmp)
        print(f"making the fake webcam clip from {args.clip} ...", flush=True)
        clip = make_fake_webcam_clip(Path(args.clip), tmp / "webcam.y4m", seconds=args.clip_seconds)
        root = tmp / "root"
        root.mkdir()
        nb = json.loads(json.dumps(BENCH_NOTEBOOK))
        nb["cells"][0]["source"] = nb["cells"][0]["source"] % {"effect": args.effect}
        (root / "bench.ipynb").write_text(json.dumps(nb))
        from bgkit.live import NODELAY_SERVER_OPTION

        extra = [NODELAY_SERVER_OPTION] if args.nodelay else []
        with start_jupyter_lab(tmp / "lab", root_dir=root, extra_args=extra) as server, sync_playwright() as pw:
            ctx = launch_chromium(pw, tmp / "chromium", [*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={clip}"])
            try:
                ctx.set_default_timeout(60_000)
                lab = LabPage(ctx.pages[0] if ctx.pages else ctx.new_page(), server)
                lab.open_notebook("bench.ipynb")
                kernel = KernelPeek(server, "bench.ipynb")
                lab.run_all_cells()
                page = lab.page
                wait_for(lambda: (hook_stats(page) or {}).get("drawnSeq", 0) > 0, 120, "the first live frame")
                kernel.run(f"live.processor.torch_threads = bgkit.live.resolve_torch_threads({args.torch_threads!r})")
                # the transport's floor: empty messages page -> kernel -> page, camera off
                kernel.run("live.stop()")
                time.sleep(1.0)
                pings = [p for p in page.evaluate(PINGS_JS) if p is not None]
                print(f"transport: empty message round trip p50 {np.percentile(pings, 50):.1f} ms, "
                      f"p95 {np.percentile(pings, 95):.1f} ms ({len(pings)} pings, camera off)", flush=True)
                kernel.run("live.start()")
                sent = hook_stats(page)["sent"]
                wait_for(lambda: hook_stats(page)["drawnSeq"] > sent, 60, "live frames again")
                kernel.run(LOAD_MODEL)
                for model in args.models:
                    random = kernel.eval(f"(lambda s: (live.use_segmenter(s[0]), s[1])[1])(_bench_load({model!r}))")
                    for transport in args.transports:
                        kernel.run(f"live.transport = {transport!r}")
                        for res in args.resolutions:
                            kernel.run(f"live.internal_resolution = {res!r}")
                            time.sleep(args.warmup)
                            kernel.run("live.reset_stats()")
                            d0, t0 = hook_stats(page)["drawnSeq"], time.monotonic()
                            time.sleep(args.seconds)
                            d1, t1 = hook_stats(page)["drawnSeq"], time.monotonic()
                            ks = kernel.eval("live.stats")
                            row = {
                                "model": model + (" (stand-in weights)" if random else ""), "resolution": res,
                                "transport": transport, "fps_shown": (d1 - d0) / (t1 - t0),
                                "latency_ms_p50": ks["latency_ms_p50"], "latency_ms_p95": ks["latency_ms_p95"],
                                "model_ms_p50": ks["model_ms_p50"], "kernel_ms_p50": ks["process_ms_p50"],
                                "frames": ks["frames_processed"], "failed": ks["frames_failed"],
                                "kB_in": ks["bytes_in"] / 1024, "kB_out": ks["bytes_out"] / 1024,
                                "page_encode_ms_p50": ks["page_encode_ms_p50"], "page_draw_ms_p50": ks["page_draw_ms_p50"],
                            }
                            rows.append(row)
                            _print_row(row)
                kernel.run("live.stop()")
                kernel.close()
            finally:
                ctx.close()
    return rows


def run_offline(args: argparse.Namespace) -> list[dict]:
    """No browser: the page's part played by ``SimulatedClient`` (encode, protocol, decode)."""
    import av
    from PIL import Image

    from bgkit.live import LiveProcessor, SimulatedClient
    from bgkit.pipeline import EffectSettings

    frames = []
    with av.open(str(args.clip)) as c:
        for f in c.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            cw = min(w, round(h * 4 / 3))
            x0 = (w - cw) // 2
            frames.append(np.array(Image.fromarray(rgb[:, x0:x0 + cw]).resize((640, 480))))
            if len(frames) >= 30:
                break
    ns: dict = {}
    exec(LOAD_MODEL, ns)
    rows = []
    for model in args.models:
        seg, random = ns["_bench_load"](model)
        proc = LiveProcessor(seg, EffectSettings(effect=args.effect, internal_resolution="medium", flip_horizontal=True),
                             torch_threads=args.torch_threads)
        for transport in args.transports:
            client = SimulatedClient(proc.handle_message, fmt=transport)
            for res in args.resolutions:
                proc.update(internal_resolution=res)
                for f in frames[:3]:
                    client.roundtrip(f)
                proc.reset_stats()
                client.rtt_ms.clear()
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < args.seconds:
                    client.roundtrip(frames[n % len(frames)])
                    n += 1
                ks = proc.stats
                row = {
                    "model": model + (" (stand-in weights)" if random else ""), "resolution": res,
                    "transport": transport + " (offline)", "fps_shown": n / (time.perf_counter() - t0),
                    "latency_ms_p50": client.rtt_ms.percentile(50), "latency_ms_p95": client.rtt_ms.percentile(95),
                    "model_ms_p50": ks["model_ms_p50"], "kernel_ms_p50": ks["process_ms_p50"],
                    "frames": ks["frames_processed"], "failed": ks["frames_failed"],
                    "kB_in": ks["bytes_in"] / 1024, "kB_out": ks["bytes_out"] / 1024,
                }
                rows.append(row)
                _print_row(row)
    return rows


HEADER = (f"{'model':<28} {'res':<7} {'transport':<16} {'fps shown':>9} {'rtt p50':>8} {'rtt p95':>8} "
          f"{'model ms':>8} {'kernel ms':>9} {'page enc':>8} {'page drw':>8} {'frames':>6} {'kB in':>6}")


def _print_row(r: dict) -> None:
    print(f"{r['model']:<28} {r['resolution']:<7} {r['transport']:<16} {r['fps_shown']:>9.1f} "
          f"{_fmt(r['latency_ms_p50']):>8} {_fmt(r['latency_ms_p95']):>8} {_fmt(r['model_ms_p50']):>8} "
          f"{_fmt(r['kernel_ms_p50']):>9} {_fmt(r.get('page_encode_ms_p50')):>8} {_fmt(r.get('page_draw_ms_p50')):>8} "
          f"{r['frames']:>6} {r['kB_in']:>6.0f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="selfie,deeplabv3", help="comma-separated model names")
    p.add_argument("--resolutions", default="low,medium,high,full", help="comma-separated internal resolutions")
    p.add_argument("--transports", default="jpeg", help="comma-separated: jpeg, rgba")
    p.add_argument("--effect", default="mask", choices=["mask", "bokeh", "replace", "cutout"])
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per setting")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds to settle after each change")
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="video for the fake webcam")
    p.add_argument("--clip-seconds", type=float, default=5.0, help="length of the looping webcam clip")
    p.add_argument("--torch-threads", default="auto",
                   help="threads torch uses for the frames: auto (half the CPUs), a number, or none (torch's default)")
    p.add_argument("--offline", action="store_true", help="no browser: SimulatedClient in this process")
    p.add_argument("--nodelay", action="store_true",
                   help="start JupyterLab with bgkit.live.NoDelayKernelWebsocketConnection (TCP_NODELAY)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.resolutions = [r.strip() for r in args.resolutions.split(",") if r.strip()]
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    args.torch_threads = None if args.torch_threads == "none" else (
        "auto" if args.torch_threads == "auto" else int(args.torch_threads))
    if not Path(args.clip).is_file():
        p.error(f"clip not found: {args.clip}")
    from bgkit.live import resolve_torch_threads

    print(f"bgkit live loop, 640x480, effect {args.effect!r}, {args.seconds:g} s per setting, {os.cpu_count()} CPUs, "
          f"torch threads {resolve_torch_threads(args.torch_threads) or 'default'}"
          f"{' (offline)' if args.offline else ', server TCP_NODELAY ' + ('on' if args.nodelay else 'off (stock)')}")
    print(HEADER)
    rows = run_offline(args) if args.offline else run_browser(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
