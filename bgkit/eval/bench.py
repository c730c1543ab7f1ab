"""Speed benchmark: ``python -m bgkit.bench`` (a script, not a test).

Every comparison runs its candidates in the same sitting on the same frame (640x480 unless told),
taking turns: ``--rounds`` rounds, each running every candidate ``runs / rounds`` times in a
rotating order, after a warm-up. A shared, noisy machine then slows every candidate alike, and
the ratios, computed per round and summarised by their median, stay fair. Times are wall-clock
milliseconds per frame (median and 95th percentile).

Sections (``--sections``, default ``effects,deeplab,bodypix``):

* ``effects``: every effect through the default pipeline (the selfie model, refinement and soft
  alpha included), against MediaPipe's own runtime (``mediapipe`` Tasks ``ImageSegmenter``)
  running the same ``.tflite`` file on the same frame. Target: at most 1.5x.
* ``deeplab``: DeepLabV3-MobileNetV3 at internal resolution "medium" end to end (segment, then
  the mask drawn with ``mask_blur_amount=4``), against the plain eager torchvision model alone
  on its 320x240 input. Target: at least 2.5x faster.
* ``bodypix``: BodyPix (MobileNetV1 0.50 and 0.75, stride 16, 2-byte weights) ``segment_person``
  at "medium", against the original TF.js library (``@tensorflow-models/body-pix`` 2.2.1,
  wasm backend, in Node; installed with npm into bgkit's cache on first use). Target: faster.
* ``backends``: every model x internal resolution x backend (segment; segment + mask; segment +
  bokeh), against the eager path.
* ``rvm``: Robust Video Matting end to end (``Pipeline(rvm, effect="cutout").process``: model,
  alpha and foreground compositing), against ONNX Runtime running the original
  ``rvm_mobilenetv3_fp32.onnx`` alone (its states carried), at internal resolution "low" (ratio
  0.25) and at RVM's default ratio for the frame. Target at "low": no slower than the reference,
  and at most 33 ms (30 frames/s). Skipped where RVM's weights are not on this machine.

Models whose pretrained weights are not on this machine run with stand-in weights
(:mod:`bgkit.models.standin`: random, batch-norm calibrated; a network's speed does not depend on
its weight values); such rows say so. ``--memory-frames N`` also runs N frames end to end and
reports the growth of the resident memory (selfie, bokeh; and RVM at "low", cut-out, when the
``rvm`` section ran). The results also go to JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..io.sample import sample_image
from ..models.backends import onnxruntime_available, openvino_available
from ..models.registry import WeightsUnavailableError, get_spec
from ..models.segmenter import Segmenter, load_segmenter
from ..models.standin import stand_in_state_dict
from ..pipeline import Pipeline
from ..pipeline.settings import EFFECTS, PART_EFFECTS, EffectSettings

log = logging.getLogger(__name__)

__all__ = ["SECTIONS", "Timings", "interleaved", "main"]

REPO = Path(__file__).resolve().parents[2]
#: The pinned original BodyPix (package.json + lock) and the Node timing server.
TFJS_REFERENCE = REPO / "tests" / "models" / "bodypix" / "reference"
SECTIONS = ("effects", "deeplab", "bodypix", "backends", "rvm")
#: The targets the sections check (ratio of medians measured in the same run).
TARGETS = {"effects": 1.5, "deeplab": 2.5, "bodypix": 1.0}


# ----------------------------------------------------------------------------------------------
# timing


class Timings(dict):
    """``{candidate: [ms, ...]}`` from :func:`interleaved`, with per-round medians kept for ratios."""

    rounds: list[dict[str, float]]

    def median(self, name: str) -> float:
        return float(np.median(self[name]))

    def p95(self, name: str) -> float:
        return float(np.percentile(self[name], 95))

    def ratio(self, name: str, reference: str) -> float:
        """Median over rounds of (this round's median of ``name`` / of ``reference``)."""
        return float(np.median([r[name] / r[reference] for r in self.rounds]))


def interleaved(fns: dict[str, Callable[[], Any]], runs: int, rounds: int, warmup: int,
                self_timed: frozenset[str] = frozenset()) -> Timings:
    """Time each function ``runs`` times (ms, wall clock), in ``rounds`` rounds taking turns.

    Each round runs every candidate ``runs // rounds`` times (one untimed call first, so the
    previous candidate's threads and caches settle), the order rotating from round to round.
    Candidates named in ``self_timed`` return their own time (ms; e.g. measured inside another
    process), which is recorded instead of the wall clock around the call.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = Timings({k: [] for k in fns})
    out.rounds = []
    per_round = max(1, runs // max(1, rounds))
    names = list(fns)
    for rnd in range(max(1, rounds)):
        this: dict[str, float] = {}
        for name in names[rnd % len(names):] + names[: rnd % len(names)]:
            fn = fns[name]
            fn()
            ts = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                own = fn()
                ts.append(float(own) if name in self_timed else (time.perf_counter() - t0) * 1000.0)
            out[name].extend(ts)
            this[name] = float(np.median(ts))
        out.rounds.append(this)
    return out


def _frame(width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.array(Image.fromarray(sample_image()).resize((width, height), Image.BILINEAR))


def _weights_for(name: str) -> tuple[Any, str]:
    """(weights, note): the model's own weights where they are on this machine, else stand-ins."""
    spec = get_spec(name)
    if spec.is_available() or name.startswith(("selfie", "bodypix")):
        return None, ""
    return stand_in_state_dict(name), "stand-in weights (timing only)"


def _row(t: Timings, name: str, reference: str | None = None, **extra: Any) -> dict:
    row = {"candidate": name, "ms_median": t.median(name), "ms_p95": t.p95(name), "frames": len(t[name])}
    if reference is not None and name != reference:
        row["ratio_to_reference"] = t.ratio(name, reference)
    row.update(extra)
    return row


def _print_table(title: str, rows: list[dict], ratio_label: str) -> None:
    print(f"\n## {title}")
    print(f"{'candidate':44s} {'median ms':>10s} {'p95 ms':>8s} {ratio_label:>14s}")
    for r in rows:
        ratio = r.get("ratio_to_reference")
        shown = "(reference)" if ratio is None else f"{ratio:.2f}x"
        print(f"{r['candidate']:44s} {r['ms_median']:10.1f} {r['ms_p95']:8.1f} {shown:>14s}  {r.get('note', '')}")


def _verdict(name: str, ok: bool, text: str) -> dict:
    print(f"target {name}: {'MET' if ok else 'NOT MET'}: {text}")
    return {"met": ok, "text": text}


# ----------------------------------------------------------------------------------------------
# sections


def bench_effects(frame: np.ndarray, runs: int, rounds: int, warmup: int) -> dict:
    """Every effect through the default pipeline vs MediaPipe's own runtime (same file, same frame)."""
    from ..models.downloads import selfie_model_path

    seg = load_segmenter("selfie", device="cpu")
    fns: dict[str, Callable[[], Any]] = {}
    reference = "mediapipe ImageSegmenter (selfie)"
    note = ""
    try:
        import mediapipe as mp
        from mediapipe.tasks import python as mp_tasks
        from mediapipe.tasks.python import vision
    except ImportError:
        reference, note = None, "mediapipe is not installed (pip install mediapipe): no reference"
    if reference is not None:
        options = vision.ImageSegmenterOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=str(selfie_model_path("general"))),
            output_confidence_masks=True, output_category_mask=False)
        segmenter = vision.ImageSegmenter.create_from_options(options)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        fns[reference] = lambda: segmenter.segment(image).confidence_masks[0].numpy_view()
    pipes = {}
    for effect in (e for e in EFFECTS if e not in PART_EFFECTS):
        pipes[effect] = Pipeline(seg, effect=effect)
        fns[f"pipeline {effect}"] = lambda p=pipes[effect]: p.process(frame)
    fns["pipeline segment only"] = lambda p=pipes["mask"]: p.segment(frame)
    try:
        t = interleaved(fns, runs, rounds, warmup)
    finally:
        if reference is not None:
            segmenter.close()  # now, not at interpreter exit (MediaPipe's finaliser fails then)
    rows = [_row(t, k, reference) for k in fns]
    _print_table(f"effects: default pipeline (selfie, {seg.backend}) vs MediaPipe's runtime, "
                 f"{frame.shape[1]}x{frame.shape[0]}", rows, "x MediaPipe")
    stages = {k: round(v, 2) for k, v in pipes["bokeh"].process(frame).segmentation.timings.items()}
    print(f"one bokeh frame, by stage (ms): {stages}")
    result: dict[str, Any] = {"rows": rows, "backend": seg.backend, "bokeh_stages_ms": stages, "note": note}
    if reference is not None:
        worst = max((r for r in rows if r["candidate"].startswith("pipeline ") and "segment" not in r["candidate"]),
                    key=lambda r: r["ratio_to_reference"])
        result["target"] = _verdict("effects", worst["ratio_to_reference"] <= TARGETS["effects"],
                                    f"slowest effect ({worst['candidate']}) {worst['ratio_to_reference']:.2f}x "
                                    f"MediaPipe's runtime (target <= {TARGETS['effects']}x)")
    return result


#: The eager reference's child process: DeepLabV3 as torchvision runs it, one timed frame per line read.
_EAGER_CHILD = """
import json, sys, time
import torch
from bgkit.eval.bench import _frame, _weights_for
from bgkit.models.segmenter import load_segmenter
h, w, threads = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(threads)
seg = load_segmenter("deeplabv3", device="cpu", weights=_weights_for("deeplabv3")[0], backend="eager")
x = (torch.from_numpy(_frame(w, h)).permute(2, 0, 1)[None].float() / 255.0 - seg._mean) / seg._std
print(json.dumps({"ready": True, "openmp": {k: v for k, v in __import__("os").environ.items() if "SPIN" in k or "BLOCKTIME" in k}}), flush=True)
for line in sys.stdin:
    t0 = time.perf_counter()
    with torch.inference_mode():
        seg.module(x)
    print(json.dumps({"ms": (time.perf_counter() - t0) * 1000.0}), flush=True)
"""


class _JsonChild:
    """A child process that answers each command line on its stdin with one JSON line on its stdout."""

    what = "child process"

    def _start(self, args: list[str], **popen: Any) -> dict:
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **popen)
        return self._read()

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the {self.what} exited")
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, command: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()


class _EagerChild(_JsonChild):
    """The plain eager torchvision model timed in a child process with OpenMP's default waiting.

    This process caps OpenMP's busy-waiting (:func:`bgkit.tune_process`), which the pipeline
    needs (its torch ops run between the network runtime's calls) and which slows eager torch,
    made of many OpenMP ops back to back (measured: 50 -> 78 ms a frame): the reference runs
    where it runs best. Each call times one frame there and returns its ms.
    """

    what = "eager reference's child process"

    def __init__(self, h: int, w: int) -> None:
        from ..tuning import OPENMP_DEFAULTS, OPT_OUT

        env = {k: v for k, v in os.environ.items() if k not in OPENMP_DEFAULTS}
        env[OPT_OUT] = "1"
        self.info = self._start([sys.executable, "-c", _EAGER_CHILD, str(h), str(w), str(torch.get_num_threads())],
                                env=env)

    def __call__(self) -> float:
        return float(self.ask("1")["ms"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def bench_deeplab(frame: np.ndarray, runs: int, rounds: int, warmup: int) -> dict:
    """DeepLabV3 "medium" end to end (mask, blur 4) vs the plain eager torchvision model on 320x240,
    the reference timed in a child process with OpenMP's defaults (see :class:`_EagerChild`)."""
    weights, note = _weights_for("deeplabv3")
    eager = load_segmenter("deeplabv3", device="cpu", weights=weights, backend="eager")
    fast = load_segmenter("deeplabv3", device="cpu", weights=weights, backend="auto")
    h, w = eager.model_input_size(frame.shape[0], frame.shape[1], "medium")
    x = (torch.from_numpy(_frame(w, h)).permute(2, 0, 1)[None].float() / 255.0 - eager._mean) / eager._std
    net = eager.module

    def torchvision_here() -> None:
        with torch.inference_mode():
            net(x)

    reference = f"eager torchvision model alone, {w}x{h} input"
    here = "the same, in this process (OpenMP wait capped)"
    child = _EagerChild(h, w)
    try:
        pipe = Pipeline(fast, effect="mask", mask_blur_amount=4, internal_resolution="medium")
        fns = {reference: child, f"bgkit medium end to end ({fast.backend})": lambda: pipe.process(frame),
               here: torchvision_here}
        t = interleaved(fns, runs, rounds, warmup, self_timed=frozenset({reference}))
    finally:
        child.close()
    rows = [_row(t, k, reference, note=note) for k in fns]
    _print_table("deeplab: end to end (segment + mask, mask_blur_amount=4) vs the model alone (the reference in a "
                 "process with OpenMP's defaults)", rows, "x model")
    speedup = 1.0 / rows[1]["ratio_to_reference"]
    target = _verdict("deeplab", speedup >= TARGETS["deeplab"],
                      f"end to end {speedup:.2f}x faster than the eager model alone (target >= {TARGETS['deeplab']}x)")
    return {"rows": rows, "speedup": speedup, "target": target, "note": note}


class _TfjsServer(_JsonChild):
    """The original BodyPix in Node (tests/models/bodypix/reference/bench_tfjs.js) as a child process."""

    what = "TF.js timing server (bench_tfjs.js)"

    def __init__(self, workdir: Path, model_root: Path, frame: np.ndarray, backend: str = "wasm") -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bgkit-bench-")
        raw = Path(self._tmp.name) / "frame.rgb"
        np.ascontiguousarray(frame).tofile(raw)
        h, w = frame.shape[:2]
        self._start(["node", "bench_tfjs.js", str(model_root), str(raw), str(h), str(w), backend], cwd=workdir)

    def close(self) -> None:
        try:
            self.ask("quit")
        except (RuntimeError, OSError, ValueError):
            pass
        self.proc.wait(timeout=10)
        self._tmp.cleanup()


def _tfjs_workdir() -> Path:
    """The reference scripts with their pinned npm packages installed (``npm ci``, once, in the cache)."""
    from ..models.downloads import cache_dir

    if not (TFJS_REFERENCE / "package-lock.json").is_file():
        raise RuntimeError(f"the TF.js reference scripts are not here ({TFJS_REFERENCE}); run from a bgkit checkout")
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed to time the original BodyPix (e.g. apt install nodejs npm)")
    work = cache_dir() / "tfjs-bench"
    work.mkdir(parents=True, exist_ok=True)
    lock = (TFJS_REFERENCE / "package-lock.json").read_bytes()
    for name in ("package.json", "package-lock.json", "bench_tfjs.js", "tfjs_load.js"):
        shutil.copyfile(TFJS_REFERENCE / name, work / name)
    stamp = work / "node_modules" / ".bgkit-lock"
    if not stamp.is_file() or stamp.read_bytes() != lock:
        print(f"installing the original BodyPix (npm ci) into {work} ...", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, check=True)
        stamp.write_bytes(lock)
    return work


def bench_bodypix(frame: np.ndarray, runs: int, rounds: int, warmup: int) -> dict:
    """BodyPix 0.50 / 0.75 segment_person at "medium": bgkit (fast backend, and eager) vs TF.js wasm."""
    from ..models.bodypix.segmenter import BODYPIX_VARIANTS, bodypix_files
    from ..models.downloads import cache_dir

    segs: dict[str, Segmenter] = {}
    for name in ("bodypix_050", "bodypix"):
        try:
            segs[name] = load_segmenter(name, device="cpu", backend="auto")
        except WeightsUnavailableError as exc:
            print(f"bodypix: skipped ({exc})")
            return {"skipped": str(exc)}
    model_root = cache_dir() / bodypix_files(BODYPIX_VARIANTS["bodypix"])[0].filename.split("/quant2/")[0]
    server = None
    note = ""
    try:
        server = _TfjsServer(_tfjs_workdir(), model_root, frame)
        info = server.ask("info")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        note = f"no TF.js reference: {exc}"
        print(note)
        info = {}
    fns: dict[str, Callable[[], Any]] = {}
    refs: dict[str, str] = {}
    for mult, name in (("050", "bodypix_050"), ("075", "bodypix")):
        seg = segs[name]
        fns[f"bgkit {name} ({seg.backend})"] = lambda seg=seg: seg.segment_person(frame, internal_resolution="medium")
        if server is not None:
            # TF.js's own clock, inside Node (the pipe's round trip left out)
            refs[name] = f"TF.js {info.get('backend', 'wasm')} {name}"
            fns[refs[name]] = lambda mult=mult: server.ask(f"run {mult} medium 1")["ms"][0]
    try:
        t = interleaved(fns, runs, rounds, warmup, self_timed=frozenset(refs.values()))
    finally:
        if server is not None:
            server.close()
    rows = []
    result: dict[str, Any] = {"tfjs": info, "note": note}
    verdicts = []
    for name in ("bodypix_050", "bodypix"):
        ours = f"bgkit {name} ({segs[name].backend})"
        if name in refs:
            rows += [_row(t, refs[name]), _row(t, ours, refs[name])]
            verdicts.append((name, rows[-1]["ratio_to_reference"]))
        else:
            rows.append(_row(t, ours))
    _print_table(f"bodypix: segment_person at 'medium', {frame.shape[1]}x{frame.shape[0]}", rows, "x TF.js")
    result["rows"] = rows
    if verdicts:
        worst = max(verdicts, key=lambda v: v[1])
        result["target"] = _verdict("bodypix", worst[1] < TARGETS["bodypix"],
                                    f"{worst[0]} takes {worst[1]:.2f}x TF.js wasm's time (target < 1x); "
                                    "TF.js also decodes poses inside segmentPerson")
    return result


#: RVM at "low": end to end at most this many ms per frame (the camera's 30 frames/s).
RVM_TARGET_MS = 33.0


def bench_rvm(frame: np.ndarray, runs: int, rounds: int, warmup: int) -> dict:
    """RVM end to end (cut-out, its foreground colours) vs ONNX Runtime running the original file
    alone, at "low" (0.25) and at RVM's default ratio for the frame (fewer runs: it is slow)."""
    from ..models.rvm import downsample_ratio, rvm_model_path

    if not onnxruntime_available():
        print("rvm: skipped (the reference needs onnxruntime: pip install 'bgkit[fast]')")
        return {"skipped": "onnxruntime is not installed"}
    try:
        path = rvm_model_path(download=False)
        seg = load_segmenter("rvm", device="cpu")
    except WeightsUnavailableError as exc:
        print("rvm: skipped (RVM's weights are not on this machine: bgkit fetch rvm)")
        return {"skipped": str(exc)}
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()  # the threads bgkit's runtime gets
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    src = np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)
    h, w = frame.shape[:2]
    reference = "ONNX Runtime, original file alone"
    result: dict[str, Any] = {"backend": seg.backend, "threads": torch.get_num_threads()}
    for label, ir, n in (("low", "low", runs), ("default", None, max(rounds, runs // 4))):
        ratio = downsample_ratio(h, w, ir)
        states = [np.zeros((1, 1, 1, 1), np.float32)] * 4

        def original(ratio: float = ratio, states: list = states) -> None:
            feed = dict(zip(("src", "r1i", "r2i", "r3i", "r4i"), (src, *states)))
            feed["downsample_ratio"] = np.array([ratio], np.float32)
            states[:] = session.run(None, feed)[2:]  # a video: the states carried

        pipe = Pipeline(seg, effect="cutout", internal_resolution=ir)
        ours = f"bgkit end to end, cutout ({seg.backend})"
        fns: dict[str, Callable[[], Any]] = {reference: original, ours: lambda p=pipe: p.process(frame)}
        if label == "low":
            stream = pipe.stream()
            fns[f"bgkit stream, cutout + smoothing ({seg.backend})"] = lambda st=stream: st.process(frame)
        t = interleaved(fns, n, rounds, warmup)
        rows = [_row(t, k, reference, internal_resolution=label, ratio=round(ratio, 4)) for k in fns]
        lh, lw = seg.model_input_size(h, w, ir)
        _print_table(f"rvm: {label} (ratio {ratio:.4g}, network at {lw}x{lh}), {w}x{h}", rows, "x original")
        stages = {k: round(v, 2) for k, v in pipe.process(frame).segmentation.timings.items()}
        print(f"one cutout frame at {label}, by stage (ms): {stages}")
        result[label] = {"ratio": ratio, "rows": rows, "stages_ms": stages}
    e2e = result["low"]["rows"][1]
    ok = e2e["ratio_to_reference"] <= 1.0 and e2e["ms_median"] <= RVM_TARGET_MS
    result["target"] = _verdict("rvm", ok, f"end to end at 'low' {e2e['ms_median']:.1f} ms median (p95 "
                                f"{e2e['ms_p95']:.1f}), {e2e['ratio_to_reference']:.2f}x the original file alone "
                                f"(target <= 1x and <= {RVM_TARGET_MS:.0f} ms)")
    return result


def bench_backends(frame: np.ndarray, models: list[str], resolutions: list[str], backends: list[str], runs: int,
                   rounds: int, warmup: int) -> dict:
    """Every model x internal resolution x backend: segment, segment + mask, segment + bokeh."""
    installed = {"onnxruntime": onnxruntime_available(), "openvino": openvino_available()}
    backends = [b for b in backends if installed.get(b, True)]
    rows = []
    for name in models:
        weights, note = _weights_for(name)
        segs = {b: load_segmenter(name, device="cpu", weights=weights, backend=b) for b in backends}
        for res_name in resolutions:
            res = None if res_name == "default" else (float(res_name) if res_name[0].isdigit() else res_name)
            fns: dict[str, Callable[[], Any]] = {}
            for b, seg in segs.items():
                for effect in ("mask", "bokeh"):
                    pipe = Pipeline(seg, EffectSettings(effect=effect, internal_resolution=res))
                    fns[f"{b} {effect}"] = lambda p=pipe: p.process(frame)
                fns[f"{b} segment"] = lambda p=pipe: p.segment(frame)
            t = interleaved(fns, runs, rounds, warmup)
            ref = "eager mask" if "eager" in segs else None
            h, w = next(iter(segs.values())).model_input_size(frame.shape[0], frame.shape[1], res)
            for key in fns:
                rows.append(_row(t, key, ref, model=name, internal_resolution=res_name, model_input=f"{w}x{h}",
                                 note=note))
            _print_table(f"backends: {name} at {res_name} (input {w}x{h})", rows[-len(fns):], "x eager mask")
    return {"rows": rows}


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: peak RSS is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_soak(seg: Segmenter, frame: np.ndarray, frames: int, effect: str = "bokeh",
                internal_resolution: Any = None) -> dict:
    """Run ``frames`` consecutive frames end to end (``effect``, as a stream); RSS after warm-up vs at the end (MiB)."""
    stream = Pipeline(seg, effect=effect, internal_resolution=internal_resolution).stream()
    warm = min(100, frames // 10)
    for _ in range(warm):
        stream.process(frame)
    start = _rss_mb()
    samples = []
    for i in range(frames):
        stream.process(frame)
        if i % max(1, frames // 20) == 0:
            samples.append(_rss_mb())
    end = _rss_mb()
    return {"frames": frames, "rss_after_warmup_mib": start, "rss_end_mib": end, "growth_mib": end - start,
            "growth_second_half_mib": end - samples[len(samples) // 2], "rss_samples_mib": samples}


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bgkit.bench", description=__doc__.splitlines()[0],
                                epilog="sections: " + ", ".join(SECTIONS))
    p.add_argument("--sections", default="effects,deeplab,bodypix", help="comma-separated sections to run")
    p.add_argument("--size", default="640x480", help="frame WIDTHxHEIGHT")
    p.add_argument("--runs", type=int, default=60, help="timed frames per candidate")
    p.add_argument("--rounds", type=int, default=6, help="rounds in which the candidates take turns")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--models", default="selfie,deeplabv3,lraspp,bodypix", help="backends section: models")
    p.add_argument("--resolutions", default="default,low,medium,high", help="backends section: resolutions")
    p.add_argument("--backends", default="eager,torch,onnxruntime,openvino", help="backends section: backends")
    p.add_argument("--memory-frames", type=int, default=0, help="also run N frames and report RSS growth")
    p.add_argument("--json", type=Path, default=Path("out/bench.json"), help="where to write the JSON")
    args = p.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size must be WIDTHxHEIGHT, e.g. 640x480; got {args.size!r}")

    from ..tuning import tune_process

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    tuning = tune_process()
    frame = _frame(width, height)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result: dict[str, Any] = {
        "frame": f"{width}x{height}", "runs": args.runs, "rounds": args.rounds, "warmup": args.warmup,
        "process_tuning": tuning,
        "unit": "ms per frame, wall clock", "load_average_at_start": load,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__},
    }
    print(f"bgkit bench: {width}x{height} frame, {args.runs} frames per candidate in {args.rounds} rounds; "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads); load {load}")
    if not tuning["openmp_wait"]:
        print("note: OpenMP's busy-waiting is not capped in this process (torch was loaded first, or it was turned "
              "off): the pipeline runs slower than it can; run `python -m bgkit.bench`, or set GOMP_SPINCOUNT=1000")
    for section in sections:
        if section == "effects":
            result["effects"] = bench_effects(frame, args.runs, args.rounds, args.warmup)
        elif section == "deeplab":
            result["deeplab"] = bench_deeplab(frame, args.runs, args.rounds, args.warmup)
        elif section == "bodypix":
            result["bodypix"] = bench_bodypix(frame, args.runs, args.rounds, args.warmup)
        elif section == "rvm":
            result["rvm"] = bench_rvm(frame, args.runs, args.rounds, args.warmup)
        elif section == "backends":
            result["backends"] = bench_backends(frame, args.models.split(","), args.resolutions.split(","),
                                                args.backends.split(","), args.runs, args.rounds, args.warmup)
    if args.memory_frames:
        soaks = [("selfie", "bokeh", None)]
        if "rvm" in sections and "skipped" not in result.get("rvm", {"skipped": True}):
            soaks.append(("rvm", "cutout", "low"))
        for name, effect, ir in soaks:
            seg = load_segmenter(name, device="cpu")
            m = memory_soak(seg, frame, args.memory_frames, effect, ir)
            result["memory" if name == "selfie" else f"memory_{name}"] = m
            print(f"\nmemory: {name} ({seg.backend}{', ' + ir if ir else ''}), {m['frames']} {effect} frames as a "
                  f"stream, RSS {m['rss_after_warmup_mib']:.0f} -> {m['rss_end_mib']:.0f} MiB (growth "
                  f"{m['growth_mib']:+.1f} MiB; second half {m['growth_second_half_mib']:+.1f} MiB)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
