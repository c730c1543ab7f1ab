#!/usr/bin/env python
"""Frame rate and latency of the live camera loop, end to end, against the seed demo (issue 13).

Sets up what the browser tests use: a stock JupyterLab (bgkit's server extension, installed with
the package, turns Nagle off on the kernel websockets; no server flag), headless Chromium with a
fake webcam (the dev set's talking-head clip, 640x480), and a notebook showing
``LiveBackground(bgkit.load_segmenter("selfie"))`` with the widget's default settings. Then:

1. **bgkit rows**: for each model, internal resolution ("default" = the settings' default, None),
   compositing ("page": the kernel answers with a 1-byte matte, the page composites; "kernel": the
   kernel sends the finished picture) and transport (auto/jpeg/rgba), the loop runs for
   ``--seconds`` and the row gives frames drawn per second (the page hook's drawn-frame counter),
   round trip p50/p95 (frame grabbed in the page -> drawn), the model's ms p50 inside the loop and
   round trip / model time.
2. **The breakdown** of a frame's round trip (ms, p50 of each stage, from the loop's own
   instrumentation: the page's grab/encode/compose/draw times reported with each frame, and the
   kernel's decode/model/refine/alpha/composite/encode times in ``live.stats``); "send+receive" is
   the round trip minus every page and kernel stage. Also the empty-message round trip
   (``bgkitLive.ping()`` x30, camera off: the transport's floor) and **contention**: the model's
   ms inside the loop against the same model, settings and frame path timed alone in the kernel
   (camera off, nothing else running).
3. **The seed demo**: the original in-browser demo (``benchmarks/seed_demo/``): BodyPix 2
   (MobileNetV1 0.75, stride 16, 2-byte weights, internalResolution "medium", threshold 0.7) on
   TF.js's wasm backend, ``segmentPerson`` + ``toMask`` + ``drawMask`` (opacity 0.7, no blur,
   mirrored) per ``requestVideoFrameCallback``, in the same Chromium with the same fake camera,
   timed for the same seconds. Its npm packages (pinned in ``tests/models/bodypix/reference``)
   are installed once into bgkit's cache (``npm ci``, the same helper as ``python -m bgkit.bench``);
   the model files come from ``../shared/models/bodypix`` (or bgkit's cache). One local HTTP
   server serves the page, the packages' ``dist`` bundles (wasm as ``application/wasm``) and the
   model. Without Node/npm or the model files the seed demo is skipped and said so.
4. **The verdict** against issue 13's targets, on the headline row (selfie, default resolution,
   page compositing): frames/s >= 3x the seed demo's, and p50 round trip <= 2x the model's ms.

Run it from the repository root (needs ../shared/data, Chromium, and for the seed demo Node/npm)::

    .venv/bin/python benchmarks/live_fps.py                          # selfie + deeplabv3, ~3 minutes
    .venv/bin/python benchmarks/live_fps.py --models selfie --seconds 6
    .venv/bin/python benchmarks/live_fps.py --resolutions default,low,medium,high,full --json /tmp/live.json
    .venv/bin/python benchmarks/live_fps.py --compositing page --transports jpeg,rgba --effect bokeh
    .venv/bin/python benchmarks/live_fps.py --seed-only --seconds 6  # the seed demo alone
    .venv/bin/python benchmarks/live_fps.py --offline                # no browser: SimulatedClient, in-process

deeplabv3 and lraspp run with stand-in weights (``bgkit.models.standin``: random, batch-norm
calibrated) when their pretrained weights are not on this machine (same network, same cost,
meaningless masks); their rows say so.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

DEFAULT_CLIP = REPO.parent / "shared" / "data" / "video" / "talking_head_tfjs_facemesh.mp4"
SEED_DIR = Path(__file__).resolve().parent / "seed_demo"
SHARED_BODYPIX = REPO.parent / "shared" / "models" / "bodypix"
SEED_MODEL = "mobilenet/quant2/075/model-stride16.json"

#: Issue 13: frames/s at least this many times the seed demo's, round trip p50 at most this many model times.
TARGET_FPS_RATIO = 3.0
TARGET_RTT_RATIO = 2.0

BENCH_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code", "execution_count": None, "id": "bench", "metadata": {}, "outputs": [],
            "source": (
                "import bgkit\n"
                "from bgkit.widgets import LiveBackground\n"
                "live = LiveBackground(bgkit.load_segmenter('selfie'))\n"
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

# Kernel-side helper: the loop's processing path timed alone (a LiveProcessor of its own with the
# live widget's segmenter, settings and threads, driven by a SimulatedClient on real frames).
TIME_ALONE = """
def _bench_alone(seg, frames_path, resolution, compositing, seconds, min_frames=8):
    import time as _t
    import numpy as _np
    import torch as _torch
    from bgkit.live.processor import LiveProcessor
    from bgkit.live.protocol import SimulatedClient
    frames = _np.load(frames_path)
    mode = 'matte' if compositing != 'kernel' else 'picture'
    p = LiveProcessor(seg, live.settings.updated(internal_resolution=resolution),
                      torch_threads=live.processor.torch_threads, compositing=compositing)
    c = SimulatedClient(p.handle_message, fmt='rgba' if mode == 'matte' else 'jpeg', mode=mode)
    before = _torch.get_num_threads()
    try:
        for i in range(3):
            c.roundtrip(frames[i % len(frames)])
        p.reset_stats()
        c.rtt_ms.clear()
        n, t0 = 0, _t.perf_counter()
        while n < min_frames or _t.perf_counter() - t0 < seconds:
            c.roundtrip(frames[n % len(frames)])
            n += 1
        s = p.stats
    finally:
        _torch.set_num_threads(before)
    return {'frames': n, 'model_ms_p50': s.get('model_ms_p50'), 'process_ms_p50': s.get('process_ms_p50'),
            'roundtrip_ms_p50': c.rtt_ms.percentile(50), 'frame_size': s.get('frame_size')}
"""

PINGS_JS = """async () => {
    const h = document.querySelector('.bgkit-live').bgkitLive;
    const out = [];
    for (let i = 0; i < 30; i++) out.push(await h.ping());
    return out;
}"""

#: The breakdown's stages, in the order a frame meets them.
STAGES = ("page grab", "page encode", "send+receive", "kernel decode", "model", "refine", "alpha/smooth",
          "pipeline other", "composite", "kernel encode", "page compose", "page draw")
STAGE_SHORT = ("grab", "enc", "xport", "k.dec", "model", "refine", "alpha", "other", "comp", "k.enc",
               "p.comp", "draw")


def _fmt(x: float | None, nd: int = 0) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _res_value(res: str) -> str | None:
    return None if res == "default" else res


# ---------------------------------------------------------------------------------------------
# frames


def _clip_frames(clip: Path, n: int = 30, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The first ``n`` frames of ``clip`` as the fake webcam shows them: cropped to 4:3, 640x480 RGB."""
    import av
    from PIL import Image

    frames = []
    w, h = size
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            fh, fw = rgb.shape[:2]
            cw = min(fw, round(fh * w / h))
            x0 = (fw - cw) // 2
            frames.append(np.array(Image.fromarray(rgb[:, x0:x0 + cw]).resize((w, h), Image.BILINEAR)))
            if len(frames) >= n:
                break
    return np.stack(frames)


# ---------------------------------------------------------------------------------------------
# the breakdown


def breakdown(ks: dict, rtt_p50: float | None, compositing: str | None) -> dict[str, float | None]:
    """One frame's round trip by stage (ms, p50 of each) from the kernel's ``live.stats``.

    "send+receive" is what is left of the round trip p50 after every page and kernel stage:
    the message's way page -> server -> kernel and back, and waiting in queues. The p50 of a sum
    is not the sum of p50s, so this is an estimate (it can come out slightly negative)."""
    def g(key: str) -> float | None:
        v = ks.get(f"{key}_ms_p50")
        return float(v) if isinstance(v, (int, float)) else None

    def total(*xs: float | None) -> float:
        return sum(x for x in xs if x is not None)

    alpha = None if g("alpha") is None and g("smooth") is None else total(g("alpha"), g("smooth"))
    staged = total(g("model"), g("refine"), alpha, g("composite"))
    other = None if g("pipeline") is None else max(0.0, g("pipeline") - staged)  # type: ignore[operator]
    draw_total = g("page_draw")
    compose = g("page_composite") if compositing == "page" else None
    draw = None if draw_total is None else (draw_total - compose if compose is not None else draw_total)
    known = total(g("page_grab"), g("page_encode"), g("process"), draw_total)
    xport = None if rtt_p50 is None or g("process") is None else rtt_p50 - known
    return {
        "page grab": g("page_grab"), "page encode": g("page_encode"), "send+receive": xport,
        "kernel decode": g("decode"), "model": g("model"), "refine": g("refine"), "alpha/smooth": alpha,
        "pipeline other": other, "composite": g("composite"), "kernel encode": g("encode"),
        "page compose": compose, "page draw": draw,
    }


def _row_label(r: dict) -> str:
    return f"{r['model']} {r['resolution']} {r['compositing']} {r['transport']} in flight {r.get('in_flight', 1)}"


# ---------------------------------------------------------------------------------------------
# the seed demo


def _node_modules() -> Path:
    """The pinned TF.js + BodyPix packages, installed (``npm ci``, once) into bgkit's cache."""
    from bgkit.eval.bench import _tfjs_workdir

    return _tfjs_workdir() / "node_modules"


def _bodypix_root(arg: str | None) -> Path:
    from bgkit.models.downloads import cache_dir

    candidates = [Path(arg)] if arg else [SHARED_BODYPIX, cache_dir() / "bodypix"]
    for root in candidates:
        if (root / SEED_MODEL).is_file():
            return root
    raise FileNotFoundError(f"BodyPix model file {SEED_MODEL} not found under {', '.join(map(str, candidates))} "
                            "(bgkit fetch bodypix puts it in the cache)")


@contextlib.contextmanager
def serve(routes: dict[str, Path], isolate: bool = False) -> Iterator[str]:
    """A static HTTP server on 127.0.0.1 (free port) serving ``routes`` (URL prefix -> folder); yields its URL.
    ``isolate``: send the cross-origin isolation headers (lets TF.js's wasm backend use threads)."""
    roots = sorted(((p, d.resolve()) for p, d in routes.items()), key=lambda x: -len(x[0]))

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                          ".wasm": "application/wasm", ".js": "text/javascript", ".json": "application/json",
                          ".bin": "application/octet-stream"}

        def translate_path(self, path: str) -> str:
            path = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
            for prefix, root in roots:
                if path.startswith(prefix):
                    target = (root / path[len(prefix):].lstrip("/")).resolve()
                    if target == root or root in target.parents:
                        return str(target)
            return "/nonexistent"

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            if isolate:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def run_seed_demo(ctx: Any, args: argparse.Namespace) -> dict:
    """The seed demo in a new tab of ``ctx`` (a Chromium with the fake camera), timed for ``args.seconds``."""
    result: dict[str, Any] = {"what": "BodyPix 2 MobileNetV1 0.75 stride 16 quant2, internalResolution medium, "
                                      "threshold 0.7, TF.js 4.22.0 wasm, segmentPerson + toMask + drawMask per rVFC"}
    try:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("Node.js/npm not found: they install the seed demo's npm packages")
        modules = _node_modules()
        models = _bodypix_root(args.bodypix_models)
    except Exception as exc:  # noqa: BLE001 - the bgkit rows still count
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    result["node_modules"], result["models"] = str(modules), str(models)
    routes = {"/npm/": modules, "/models/": models, "/": SEED_DIR}
    with serve(routes, isolate=args.seed_threads) as url:
        page = ctx.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(f"{url}/index.html?model=/models/{SEED_MODEL}")
            deadline = time.monotonic() + 180
            while True:
                s = page.evaluate("() => window.seedDemo ? window.seedDemo.stats() : null")
                if s and (s["error"] or s["ready"]):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the seed demo drew no frame in 180 s")
                time.sleep(0.5)
            if s["error"]:
                raise RuntimeError(s["error"])
            time.sleep(args.warmup)
            page.evaluate("() => window.seedDemo.reset()")
            t0 = time.monotonic()
            time.sleep(args.seconds)
            s = page.evaluate("() => window.seedDemo.stats()")
            t1 = time.monotonic()
            frames = s["list"]
            total = [f["totalMs"] for f in frames]
            result.update({
                "backend": s["backend"], "flags": s["flags"], "video": [s["videoWidth"], s["videoHeight"]],
                "cross_origin_isolated": bool(args.seed_threads), "frames": s["frames"], "seconds": t1 - t0,
                "fps": s["frames"] / (t1 - t0),
                "frame_ms_p50": _pct(total, 50), "frame_ms_p95": _pct(total, 95),
                "segment_ms_p50": _pct([f["segmentMs"] for f in frames], 50),
                "draw_ms_p50": _pct([f["drawMs"] for f in frames], 50),
                "error_in_loop": s["error"],
            })
        except Exception as exc:  # noqa: BLE001
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["console"] = console[-10:]
        finally:
            page.close()
    return result


def _print_seed(seed: dict) -> None:
    if "error" in seed:
        print(f"seed demo: NOT MEASURED ({seed['error']})", flush=True)
        for line in seed.get("console", []):
            print(f"  console: {line}")
        return
    flags = seed.get("flags") or {}
    print(f"seed demo ({seed['what']}; backend {seed['backend']}, SIMD {flags.get('WASM_HAS_SIMD_SUPPORT')}, "
          f"threads {flags.get('WASM_HAS_MULTITHREAD_SUPPORT')}, camera {seed['video'][0]}x{seed['video'][1]}):")
    print(f"  {seed['fps']:.1f} frames/s ({seed['frames']} frames in {seed['seconds']:.1f} s); per frame p50 "
          f"{_fmt(seed['frame_ms_p50'])} ms, p95 {_fmt(seed['frame_ms_p95'])} ms (segmentPerson "
          f"{_fmt(seed['segment_ms_p50'])} ms + toMask/drawMask {_fmt(seed['draw_ms_p50'], 1)} ms)", flush=True)


# ---------------------------------------------------------------------------------------------
# the browser run


def run_browser(args: argparse.Namespace) -> dict:
    from playwright.sync_api import sync_playwright

    from browser.conftest import LabPage, launch_chromium, start_jupyter_lab
    from browser.live_helpers import FAKE_CAMERA_ARGS, KernelPeek, hook_stats, make_fake_webcam_clip, wait_for

    out: dict[str, Any] = {"rows": [], "alone": [], "seed_demo": None, "transport_floor": None}
    with tempfile.TemporaryDirectory(prefix="bgkit-live-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"making the fake webcam clip from {args.clip} ...", flush=True)
        clip = make_fake_webcam_clip(Path(args.clip), tmp / "webcam.y4m", seconds=args.clip_seconds)
        frames_path = tmp / "frames.npy"
        np.save(frames_path, _clip_frames(Path(args.clip), 30))
        cam_args = [*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={clip}"]
        if args.seed_only:
            with sync_playwright() as pw:
                ctx = launch_chromium(pw, tmp / "chromium", cam_args)
                try:
                    out["seed_demo"] = run_seed_demo(ctx, args)
                finally:
                    ctx.close()
            _print_seed(out["seed_demo"])
            return out
        root = tmp / "root"
        root.mkdir()
        (root / "bench.ipynb").write_text(json.dumps(BENCH_NOTEBOOK))
        with start_jupyter_lab(tmp / "lab", root_dir=root, extra_args=args.server_arg) as server, \
                sync_playwright() as pw:
            ctx = launch_chromium(pw, tmp / "chromium", cam_args)
            try:
                ctx.set_default_timeout(60_000)
                lab = LabPage(ctx.pages[0] if ctx.pages else ctx.new_page(), server)
                lab.open_notebook("bench.ipynb")
                kernel = KernelPeek(server, "bench.ipynb")
                lab.run_all_cells()
                page = lab.page
                wait_for(lambda: (hook_stats(page) or {}).get("drawnSeq", 0) > 0, 180, "the first live frame")
                nodelay = "kernel websockets without Nagle" in server.log()
                out["server_nodelay"] = nodelay
                kernel.run(LOAD_MODEL + TIME_ALONE + "_bench_segs = {}")
                if args.torch_threads != "auto":
                    kernel.run("from bgkit.live.processor import resolve_torch_threads as _rtt\n"
                               f"live.processor.torch_threads = _rtt({args.torch_threads!r})")
                if args.effect:
                    kernel.run(f"live.effect = {args.effect!r}")
                info = kernel.eval("{'effect': live.effect, 'torch_threads': live.processor.torch_threads, "
                                   "'subshells': live.frontend.get('subshells'), 'reason': live.frontend.get('reason')}")
                out["kernel"] = info
                print(f"server: bgkit.live.server extension {'active (TCP_NODELAY)' if nodelay else 'NOT active'}; "
                      f"effect {info['effect']!r}; torch threads in the kernel {info['torch_threads']}; comms over "
                      f"subshells {info['subshells']}{'' if info['subshells'] else ' (' + str(info['reason']) + ')'}",
                      flush=True)

                # -- camera off: the transport's floor, and each model timed alone ------------------
                kernel.run("live.stop()")
                wait_for(lambda: not hook_stats(page)["running"], 20, "the camera to stop")
                time.sleep(1.0)
                pings = [p for p in page.evaluate(PINGS_JS) if p is not None]
                out["transport_floor"] = {"pings": len(pings), "min_ms": min(pings, default=None),
                                          "p50_ms": _pct(pings, 50), "p95_ms": _pct(pings, 95),
                                          "all_ms": [round(x, 2) for x in pings]}
                print(f"transport floor: empty message page -> kernel -> page min {_fmt(min(pings, default=None), 1)} ms, "
                      f"p50 {_fmt(_pct(pings, 50), 1)} ms, p95 {_fmt(_pct(pings, 95), 1)} ms ({len(pings)} pings, "
                      "camera off)", flush=True)
                stand_in: dict[str, bool] = {}
                for model in args.models:
                    stand_in[model] = kernel.eval(
                        f"(lambda r: (_bench_segs.__setitem__({model!r}, r[0]), r[1])[1])(_bench_load({model!r}))")
                    label = model + (" (stand-in weights)" if stand_in[model] else "")
                    for res in args.resolutions:
                        a = kernel.eval(f"_bench_alone(_bench_segs[{model!r}], {str(frames_path)!r}, "
                                        f"{_res_value(res)!r}, 'page', {args.alone_seconds!r})")
                        a.update(model=label, resolution=res)
                        out["alone"].append(a)
                        print(f"alone in the kernel (camera off): {label} {res}: model {_fmt(a['model_ms_p50'], 1)} ms "
                              f"p50, kernel {_fmt(a['process_ms_p50'], 1)} ms ({a['frames']} frames, frame "
                              f"{a['frame_size']})", flush=True)

                # -- the loop --------------------------------------------------------------------
                kernel.run("live.start()")
                wait_for(lambda: hook_stats(page)["drawnSeq"] > 0 and hook_stats(page)["running"], 60,
                         "live frames again")
                print()
                print(HEADER)
                for model in args.models:
                    label = model + (" (stand-in weights)" if stand_in[model] else "")
                    kernel.run(f"live.use_segmenter(_bench_segs[{model!r}])")
                    for res in args.resolutions:
                        kernel.run(f"live.internal_resolution = {_res_value(res)!r}")
                        for comp in args.compositing:
                            kernel.run(f"live.compositing = {comp!r}")
                            for transport in args.transports:
                                kernel.run(f"live.transport = {transport!r}")
                                for inflight in args.in_flight:
                                    kernel.run(f"live.max_in_flight = {inflight}")
                                    row = _measure(kernel, page, args, hook_stats)
                                    row.update(model=label, resolution=res, compositing_asked=comp,
                                               transport_asked=transport, in_flight=inflight)
                                    row["compositing"] = row.pop("compositing_seen") or comp
                                    row["breakdown"] = breakdown(row["stats"], row["latency_ms_p50"],
                                                                 row["compositing"])
                                    out["rows"].append(row)
                                    _print_row(row)
                kernel.run("live.stop()")
                kernel.close()
                # -- the seed demo, same browser, same camera --------------------------------------
                print()
                if args.no_seed:
                    out["seed_demo"] = {"error": "skipped (--no-seed)"}
                else:
                    out["seed_demo"] = run_seed_demo(ctx, args)
            finally:
                ctx.close()
    return out


def _measure(kernel: Any, page: Any, args: argparse.Namespace, hook_stats: Any) -> dict:
    """Let the loop settle, then count drawn frames for ``args.seconds`` and read the kernel's stats."""
    sent = hook_stats(page)["sent"]
    deadline = time.monotonic() + 60
    while hook_stats(page)["drawnSeq"] <= sent + 2 and time.monotonic() < deadline:  # the new settings show
        time.sleep(0.2)
    time.sleep(args.warmup)
    kernel.run("live.reset_stats()")
    h0, t0 = hook_stats(page), time.monotonic()
    time.sleep(args.seconds)
    h1, t1 = hook_stats(page), time.monotonic()
    ks = kernel.eval("live.stats")
    drawn = (h1["drawnSeq"] - h0["drawnSeq"]) - (h1["timeouts"] - h0["timeouts"])
    model_ms, rtt = ks.get("model_ms_p50"), ks.get("latency_ms_p50")
    dropped = h1["dropped"] - h0["dropped"]
    return {
        # the camera's own rate as the page sees it (frames drawn + camera frames never sent)
        "fps_camera": (drawn + dropped) / (t1 - t0),
        "fps_shown": drawn / (t1 - t0), "fps_page_2s": h1.get("fps"), "fps_kernel": ks.get("fps"),
        "latency_ms_p50": rtt, "latency_ms_p95": ks.get("latency_ms_p95"),
        "model_ms_p50": model_ms, "kernel_ms_p50": ks.get("process_ms_p50"),
        "rtt_over_model": (rtt / model_ms) if rtt and model_ms else None,
        "frames": ks.get("frames_processed"), "failed": ks.get("frames_failed"),
        "timeouts": h1["timeouts"] - h0["timeouts"], "dropped_camera_frames": h1["dropped"] - h0["dropped"],
        "frame_size": ks.get("frame_size"), "transport": ks.get("transport") or "?",
        "compositing_seen": ks.get("compositing"), "kB_in": (ks.get("bytes_in") or 0) / 1024,
        "kB_out": (ks.get("bytes_out") or 0) / 1024, "page_error": h1.get("error") or None, "stats": ks,
    }


# ---------------------------------------------------------------------------------------------
# offline: no browser


def run_offline(args: argparse.Namespace) -> dict:
    """No browser: the page's part played by ``SimulatedClient`` (scaling, encode, protocol, compositing)."""
    from bgkit.live.processor import LiveProcessor
    from bgkit.live.protocol import SimulatedClient
    from bgkit.pipeline import EffectSettings

    frames = _clip_frames(Path(args.clip), 30)
    ns: dict = {}
    exec(LOAD_MODEL, ns)
    rows = []
    settings = EffectSettings(flip_horizontal=True)
    if args.effect:
        settings = settings.updated(effect=args.effect)
    print(HEADER)
    for model in args.models:
        seg, random = ns["_bench_load"](model)
        for res in args.resolutions:
            for comp in args.compositing:
                proc = LiveProcessor(seg, settings.updated(internal_resolution=_res_value(res)),
                                     torch_threads=args.torch_threads, compositing=comp)
                mode = "picture" if comp == "kernel" else "matte"
                for transport in args.transports:
                    fmt = ("rgba" if mode == "matte" else "jpeg") if transport == "auto" else transport
                    client = SimulatedClient(proc.handle_message, fmt=fmt, mode=mode)
                    for f in frames[:3]:
                        client.roundtrip(f)
                    proc.reset_stats()
                    client.rtt_ms.clear()
                    n, t0 = 0, time.perf_counter()
                    while time.perf_counter() - t0 < args.seconds:
                        client.roundtrip(frames[n % len(frames)])
                        n += 1
                    ks = proc.stats
                    rtt, model_ms = client.rtt_ms.percentile(50), ks.get("model_ms_p50")
                    row = {
                        "model": model + (" (stand-in weights)" if random else ""), "resolution": res,
                        "compositing": ks.get("compositing") or comp, "transport": fmt + " (offline)",
                        "fps_shown": n / (time.perf_counter() - t0),
                        "latency_ms_p50": rtt, "latency_ms_p95": client.rtt_ms.percentile(95),
                        "model_ms_p50": model_ms, "kernel_ms_p50": ks.get("process_ms_p50"),
                        "rtt_over_model": (rtt / model_ms) if rtt and model_ms else None,
                        "frames": ks["frames_processed"], "failed": ks["frames_failed"],
                        "frame_size": ks.get("frame_size"), "kB_in": ks["bytes_in"] / 1024,
                        "kB_out": ks["bytes_out"] / 1024, "stats": ks,
                    }
                    row["breakdown"] = breakdown(ks, rtt, row["compositing"])
                    rows.append(row)
                    _print_row(row)
    return {"rows": rows, "alone": [], "seed_demo": None, "transport_floor": None}


# ---------------------------------------------------------------------------------------------
# printing


HEADER = (f"{'model':<30} {'res':<7} {'comp':<6} {'transport':<14} {'fly':>3} {'size':>7} {'fps shown':>9} {'camera':>6} {'rtt p50':>7} "
          f"{'rtt p95':>7} {'model ms':>8} {'rtt/model':>9} {'kernel ms':>9} {'frames':>6} {'kB in':>5}")


def _print_row(r: dict) -> None:
    size = "x".join(map(str, r["frame_size"])) if r.get("frame_size") else "-"
    ratio = "-" if r.get("rtt_over_model") is None else f"{r['rtt_over_model']:.2f}"
    print(f"{r['model']:<30} {r['resolution']:<7} {r['compositing']:<6} {r['transport']:<14} {r.get('in_flight', 1):>3} {size:>7} "
          f"{r['fps_shown']:>9.1f} {r.get('fps_camera', float('nan')):>6.1f} {_fmt(r['latency_ms_p50']):>7} {_fmt(r['latency_ms_p95']):>7} "
          f"{_fmt(r['model_ms_p50'], 1):>8} {ratio:>9} {_fmt(r['kernel_ms_p50'], 1):>9} {r['frames']:>6} "
          f"{r['kB_in']:>5.0f}" + (f"  page error: {r['page_error']}" if r.get("page_error") else ""), flush=True)


def _print_breakdown(rows: list[dict]) -> None:
    if not rows:
        return
    print()
    print("breakdown of a frame's round trip (ms, p50 of each stage; xport = send+receive = rtt minus the rest):")
    width = max(len(_row_label(r)) for r in rows)
    print(f"{'':<{width}} " + " ".join(f"{s:>6}" for s in STAGE_SHORT) + f" {'rtt p50':>7}")
    for r in rows:
        b = r["breakdown"]
        print(f"{_row_label(r):<{width}} " + " ".join(f"{_fmt(b[s], 1):>6}" for s in STAGES)
              + f" {_fmt(r['latency_ms_p50'], 1):>7}")
    if any(str(r["transport"]).endswith("(offline)") for r in rows):
        print("(offline: no page and no network; xport is the SimulatedClient's own work in Python: scaling, "
              "encoding, compositing the matte)")


def _print_headline_breakdown(row: dict) -> None:
    print()
    print(f"one frame of {_row_label(row)} (ms, p50):")
    b = row["breakdown"]
    for s in STAGES:
        if b[s] is not None:
            print(f"  {s:<15} {b[s]:>7.1f}")
    print(f"  {'= round trip':<15} {_fmt(row['latency_ms_p50'], 1):>7}")


def _print_contention(out: dict) -> None:
    rows = [r for r in out["rows"] if r["compositing"] == "page"]
    if not out["alone"] or not rows:
        return
    print()
    print("contention: the model's ms p50 inside the loop (browser + server + kernel on the same CPUs) vs alone in the kernel")
    print(f"{'model':<30} {'res':<7} {'in loop':>8} {'alone':>8} {'slowdown':>8}")
    out["contention"] = []
    for a in out["alone"]:
        loop = next((r for r in rows if r["model"] == a["model"] and r["resolution"] == a["resolution"]), None)
        if loop is None:
            continue
        m_loop, m_alone = loop["model_ms_p50"], a["model_ms_p50"]
        slow = (m_loop / m_alone) if m_loop and m_alone else None
        out["contention"].append({"model": a["model"], "resolution": a["resolution"], "model_ms_in_loop": m_loop,
                                  "model_ms_alone": m_alone, "slowdown": slow})
        print(f"{a['model']:<30} {a['resolution']:<7} {_fmt(m_loop, 1):>8} {_fmt(m_alone, 1):>8} "
              f"{'-' if slow is None else f'{slow:.2f}x':>8}")


def _headline(rows: list[dict]) -> dict | None:
    """Issue 13's row: selfie, the default resolution, page compositing (else the closest there is)."""
    def score(r: dict) -> tuple:
        return (r["model"].startswith("selfie") and not r["model"].startswith("selfie_"), r["resolution"] == "default",
                r["compositing"] == "page", r.get("transport_asked", "auto") == "auto")
    return max(rows, key=score) if rows else None


def _verdict(out: dict) -> None:
    head = _headline(out["rows"])
    seed = out.get("seed_demo") or {}
    comp: dict[str, Any] = {}
    out["comparison"] = comp
    if head is None:
        return
    print()
    print(f"issue 13 targets, on {_row_label(head)}:")
    comp["row"] = _row_label(head)
    fps_seed = seed.get("fps")
    if fps_seed:
        ratio = head["fps_shown"] / fps_seed
        ok = ratio >= TARGET_FPS_RATIO
        comp.update(fps=head["fps_shown"], seed_fps=fps_seed, fps_ratio=ratio, fps_target=TARGET_FPS_RATIO, fps_pass=ok)
        print(f"  frames/s: {head['fps_shown']:.1f} vs seed demo {fps_seed:.1f} = {ratio:.2f}x "
              f"(target >= {TARGET_FPS_RATIO:g}x): {'PASS' if ok else 'NOT MET'}")
        if head.get("fps_camera"):
            print(f"  the camera delivered {head['fps_camera']:.1f} frames/s to the page (the ceiling): "
                  f"{100 * head['fps_shown'] / head['fps_camera']:.0f}% of them shown")
    else:
        comp.update(fps=head["fps_shown"], seed_fps=None, fps_ratio=None, fps_pass=None)
        print(f"  frames/s: {head['fps_shown']:.1f}; seed demo not measured: ratio n/a")
    r = head.get("rtt_over_model")
    if r is not None:
        ok = r <= TARGET_RTT_RATIO
        comp.update(rtt_p50=head["latency_ms_p50"], model_ms=head["model_ms_p50"], rtt_ratio=r,
                    rtt_target=TARGET_RTT_RATIO, rtt_pass=ok)
        alone = next((a for a in out.get("alone", []) if a["model"] == head["model"]
                      and a["resolution"] == head["resolution"]), None)
        extra = ""
        if alone and alone.get("model_ms_p50"):
            comp["rtt_over_model_alone"] = head["latency_ms_p50"] / alone["model_ms_p50"]
            extra = f"; {comp['rtt_over_model_alone']:.2f}x the model's ms alone ({alone['model_ms_p50']:.1f})"
        print(f"  round trip p50 {head['latency_ms_p50']:.1f} ms = {r:.2f}x the model's {head['model_ms_p50']:.1f} ms "
              f"in the loop (target <= {TARGET_RTT_RATIO:g}x): {'PASS' if ok else 'NOT MET'}{extra}")
    else:
        comp.update(rtt_ratio=None, rtt_pass=None)
        print("  round trip / model: n/a (no timings)")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default="selfie,deeplabv3", help="comma-separated model names")
    p.add_argument("--resolutions", default="default",
                   help="comma-separated internal resolutions: default (the settings' default), low, medium, high, full")
    p.add_argument("--compositing", default="page,kernel", help="comma-separated: page, kernel (auto = page)")
    p.add_argument("--transports", default="auto", help="comma-separated: auto, jpeg, rgba")
    p.add_argument("--in-flight", default="1", help="comma-separated max_in_flight values (frames on their way at once)")
    p.add_argument("--effect", default=None, choices=["mask", "bokeh", "replace", "cutout"],
                   help="set this effect (default: the widget's default settings)")
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per setting (and for the seed demo)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds to settle after each change")
    p.add_argument("--alone-seconds", type=float, default=3.0, help="seconds of each model timed alone in the kernel")
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="video for the fake webcam")
    p.add_argument("--clip-seconds", type=float, default=5.0, help="length of the looping webcam clip")
    p.add_argument("--torch-threads", default="auto",
                   help="threads torch uses for the frames: auto (the widget's default: half the CPUs), a number, "
                        "or none (torch's default)")
    p.add_argument("--bodypix-models", default=None,
                   help=f"folder with {SEED_MODEL} for the seed demo (default: ../shared/models/bodypix, else bgkit's cache)")
    p.add_argument("--seed-threads", action="store_true",
                   help="serve the seed demo cross-origin isolated, so TF.js wasm may use threads (default: a plain "
                        "static server, as the demo was served)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra jupyter lab option (repeatable), e.g. to compare with bgkit's server extension off: "
                        "--server-arg=--ServerApp.jpserver_extensions=bgkit.live.server=False")
    p.add_argument("--no-seed", action="store_true", help="skip the seed demo")
    p.add_argument("--seed-only", action="store_true", help="only the seed demo (no JupyterLab)")
    p.add_argument("--offline", action="store_true", help="no browser: SimulatedClient in this process")
    p.add_argument("--json", help="also write everything to this JSON file")
    args = p.parse_args(argv)

    def split(s: str) -> list[str]:
        return [x.strip() for x in s.split(",") if x.strip()]

    args.models, args.resolutions = split(args.models), split(args.resolutions)
    args.transports = split(args.transports)
    args.in_flight = [int(n) for n in split(args.in_flight)]
    args.compositing = ["page" if c == "auto" else c for c in split(args.compositing)]
    for c in args.compositing:
        if c not in ("page", "kernel"):
            p.error(f"--compositing: page or kernel, not {c!r}")
    for t in args.transports:
        if t not in ("auto", "jpeg", "rgba"):
            p.error(f"--transports: auto, jpeg or rgba, not {t!r}")
    args.torch_threads = None if args.torch_threads == "none" else (
        "auto" if args.torch_threads == "auto" else int(args.torch_threads))
    if not Path(args.clip).is_file():
        p.error(f"clip not found: {args.clip}")
    from bgkit.live.processor import resolve_torch_threads

    print(f"bgkit live loop, camera 640x480, {args.seconds:g} s per setting, {os.cpu_count()} CPUs "
          f"(load average {os.getloadavg()[0]:.1f}), torch threads {resolve_torch_threads(args.torch_threads) or 'default'}"
          f"{' (offline: SimulatedClient, no browser)' if args.offline else ', stock JupyterLab + headless Chromium'}",
          flush=True)
    t_start = time.monotonic()
    out = run_offline(args) if args.offline else run_browser(args)
    rows = out["rows"]
    if rows:
        _print_breakdown(rows)
        head = _headline(rows)
        if head is not None:
            _print_headline_breakdown(head)
    _print_contention(out)
    if out.get("seed_demo") is not None and not args.seed_only:
        _print_seed(out["seed_demo"])
    if rows:
        _verdict(out)
    print(f"\n(total {time.monotonic() - t_start:.0f} s)")
    if args.json:
        out["config"] = {k: v for k, v in vars(args).items() if k != "json"}
        out["cpus"] = os.cpu_count()
        out["load_average_at_end"] = os.getloadavg()
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
