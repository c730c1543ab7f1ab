"""The ``bgkit`` command line (also ``python -m bgkit``).

Subcommands:
    demo      the quick-start job: the bundled sample through every effect, plus the figures
    effect    apply one effect to an image and write the result
    figures   write the comparison figures for an image
    fetch     download/cache model weights up front
    models    list the registered models and whether their weights are here
    video     apply one effect to a video file (or a folder of frames), keeping fps and sound
    evaluate  measure mean IoU, boundary F-score and flicker against ground-truth masks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .backends import BACKENDS
from .imageio import ImageError, load_image, save_image
from .models.registry import WeightsUnavailableError, get_spec, list_models
from .pipeline import EFFECTS, EffectSettings, render
from .segmentation import INTERNAL_RESOLUTIONS, resolve_internal_resolution


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _resolution(text: str) -> str | float:
    value: str | float = text if text.lower() in INTERNAL_RESOLUTIONS else _float(text)
    try:
        resolve_internal_resolution(value)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or a resolution name: {text!r}") from None


def _ranged(lo: float, hi: float):
    def parse(text: str) -> float:
        v = _float(text)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo:g} and {hi:g}; got {text}")
        return v

    return parse


def _color(text: str) -> tuple[int, int, int, int]:
    from .compositing import parse_color

    try:
        if "," in text:  # "r,g,b" or "r,g,b,a"
            return parse_color(tuple(_float(part) for part in text.split(",")), name="colour")
        return parse_color(text, name="colour")
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_choice(text: str) -> str:
    if text != "auto" and text not in list_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose from auto, {', '.join(list_models())}")
    return text


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=_model_choice, default="auto",
                   help="segmenter: auto (default), " + ", ".join(list_models()))
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda or mps")
    p.add_argument("--weights", default=None, help="weights file for the model (default: its official weights)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the network runs: auto (default: the fastest installed), eager, torch, onnxruntime, openvino")


def _add_effect_options(p: argparse.ArgumentParser) -> None:
    d = EffectSettings()
    p.add_argument("--effect", choices=EFFECTS, default="mask", help="what to draw (default: mask)")
    p.add_argument("--internal-resolution", type=_resolution, default=None,
                   help="low, medium, high, full or a number in (0, 2] (default: the model's)")
    p.add_argument("--threshold", type=_ranged(0, 1), default=d.threshold, help="segmentation threshold 0..1")
    p.add_argument("--opacity", type=_ranged(0, 1), default=d.opacity, help="mask opacity 0..1 (effect mask)")
    p.add_argument("--mask-blur", type=_ranged(0, 20), default=d.mask_blur_amount, help="mask blur in px, 0..20")
    p.add_argument("--background-blur", type=_ranged(0, 20), default=d.background_blur_amount,
                   help="background blur in px, 0..20 (effect bokeh)")
    p.add_argument("--edge-blur", type=_ranged(0, 20), default=d.edge_blur_amount, help="edge blur in px, 0..20")
    p.add_argument("--foreground", type=_color, default=d.foreground, help="person colour, e.g. '#00000000' or 0,0,0,0")
    p.add_argument("--background", type=_color, default=d.background,
                   help="background colour, e.g. '#000000ff' (mask) or the replacement colour (replace)")
    p.add_argument("--background-image", default=None, help="replacement picture for --effect replace")
    p.add_argument("--flip", action="store_true", help="mirror the output left-right")
    p.add_argument("--no-refine", action="store_true",
                   help="skip the guided-filter edge refinement (on by default)")


def _add_temporal_options(p: argparse.ArgumentParser) -> None:
    d = EffectSettings()
    p.add_argument("--no-smoothing", action="store_true",
                   help="no temporal smoothing: every frame's mask on its own (smoothing is on by default)")
    p.add_argument("--ema", type=_ranged(0.01, 1), default=d.temporal_ema,
                   help=f"weight of the newest frame in the moving average, (0, 1]; 1 = none (default {d.temporal_ema:g})")
    p.add_argument("--motion-gate", type=_ranged(0, 1), default=d.temporal_motion_gate,
                   help="probability change that skips the average, so motion is not trailed; 0 = plain average "
                        f"(default {d.temporal_motion_gate:g})")
    p.add_argument("--hysteresis", type=_ranged(0, 0.99), default=d.hysteresis,
                   help=f"on/off band around the threshold, [0, 1); 0 = none (default {d.hysteresis:g})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bgkit", description="Remove, blur or replace the background behind a person.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="the bundled sample photo through every effect, plus the comparison figures")
    p.add_argument("-o", "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    _add_model_options(p)

    p = sub.add_parser("effect", help="apply an effect to an image")
    p.add_argument("image", help="input image file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image file (.png keeps transparency)")
    _add_model_options(p)
    _add_effect_options(p)

    p = sub.add_parser("figures", help="write the comparison figures for an image")
    p.add_argument("image", help="input image file")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--models", default=None,
                   help="comma-separated models to compare (default: every model whose weights are here)")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda or mps")

    p = sub.add_parser("fetch", help="download and cache model weights, so later runs work offline")
    p.add_argument("models", nargs="*", default=["selfie"], help="model names, or 'all' (default: selfie)")

    sub.add_parser("models", help="list the registered models")

    p = sub.add_parser("video", help="apply an effect to a video file or a folder of frames")
    p.add_argument("input", help="input video file, or a folder of numbered image frames")
    p.add_argument("output", type=Path,
                   help="output file (.mp4, .mov, .mkv, .webm; cutout needs .webm, .mov or .mkv), "
                        "or a folder for PNG frames")
    _add_model_options(p)
    _add_effect_options(p)
    _add_temporal_options(p)
    p.add_argument("--no-audio", action="store_true", help="drop the audio track (kept by default)")
    p.add_argument("--fps", type=_ranged(0.1, 1000), default=None,
                   help="frame rate of a folder of frames (default 25; a video file keeps its own)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--no-progress", "-q", dest="progress", action="store_false", help="no progress bar")

    p = sub.add_parser("evaluate", help="measure quality against ground-truth masks (IoU, boundary F, flicker)")
    p.add_argument("--images", type=Path, required=True,
                   help="folder of images; numbered frames (00000.jpg, ...) are evaluated as one video")
    p.add_argument("--masks", type=Path, required=True, help="folder of masks with the same names (255 = person)")
    _add_model_options(p)
    p.add_argument("--internal-resolution", type=_resolution, default=None,
                   help="low, medium, high, full or a number in (0, 2] (default: the model's)")
    p.add_argument("--threshold", type=_ranged(0, 1), default=EffectSettings().threshold,
                   help="segmentation threshold 0..1")
    p.add_argument("--no-refine", action="store_true", help="without edge refinement")
    _add_temporal_options(p)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--video", dest="as_video", action="store_const", const=True, default=None,
                      help="treat the images as one video in name order (default: when the names are numbers)")
    kind.add_argument("--photos", dest="as_video", action="store_const", const=False,
                      help="treat the images as independent photos")
    p.add_argument("--compare", action="store_true",
                   help="also measure without smoothing and/or refinement, one row each")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", "-q", dest="progress", action="store_false", help="no progress bar")
    return parser


def _cmd_models(_: argparse.Namespace) -> int:
    for name in list_models():
        spec = get_spec(name)
        size = f"{spec.native_size[1]}x{spec.native_size[0]}" if spec.native_size else "any size"
        here = "weights here" if spec.is_available() else "weights not here"
        print(f"{name:18s} {size:10s} {here:17s} {spec.title}  [licence: {spec.licence}]")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    import torch

    names = list_models() if args.models == ["all"] else args.models
    failed = 0
    for name in names:
        spec = get_spec(_model_choice_or_error(name))
        try:
            spec.build(None, torch.device("cpu"))
            print(f"{name}: ready")
        except WeightsUnavailableError as exc:
            failed += 1
            print(f"{name}: NOT available: {exc}", file=sys.stderr)
    return 1 if failed else 0


def _model_choice_or_error(name: str) -> str:
    if name not in list_models():
        raise CLIError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    return name


def _load(args: argparse.Namespace):
    from .segmenter import load_segmenter

    seg = load_segmenter(args.model, device=args.device, weights=args.weights, backend=args.backend)
    print(f"model: {seg.describe()}", file=sys.stderr)
    return seg


def _settings(args: argparse.Namespace) -> EffectSettings:
    bg_image = load_image(args.background_image) if args.background_image else None
    return EffectSettings(
        effect=args.effect, internal_resolution=args.internal_resolution, threshold=args.threshold,
        opacity=args.opacity, mask_blur_amount=args.mask_blur, background_blur_amount=args.background_blur,
        edge_blur_amount=args.edge_blur, foreground=args.foreground, background=args.background,
        background_image=bg_image, flip_horizontal=args.flip,
        refine_edges=not getattr(args, "no_refine", False),
    )


def _temporal(args: argparse.Namespace, settings: EffectSettings) -> EffectSettings:
    return settings.updated(temporal_smoothing=not args.no_smoothing, temporal_ema=args.ema,
                            temporal_motion_gate=args.motion_gate, hysteresis=args.hysteresis)


def _cmd_effect(args: argparse.Namespace) -> int:
    from .pipeline import process_frame

    image = load_image(args.image)
    settings = _settings(args)
    if settings.effect == "cutout" and args.output.suffix.lower() in (".jpg", ".jpeg"):
        raise CLIError(f"{args.output.name}: the cutout effect is transparent; write a .png or .webp file")
    out, seg = process_frame(image, _load(args), settings)
    save_image(out, args.output)
    w, h = seg.model_input_size
    print(f"{args.output}  ({settings.effect}; model input {w}x{h}, {seg.elapsed_ms:.0f} ms)")
    return 0


def _segmenters(names: str | None, device: str):
    from .models.registry import available_models
    from .segmenter import load_segmenter

    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else available_models()
    if not chosen:
        chosen = ["selfie"]
    return {n: load_segmenter(_model_choice_or_error(n), device=device) for n in chosen}


def _cmd_figures(args: argparse.Namespace) -> int:
    from .figures import write_figures

    image = load_image(args.image)
    for path in write_figures(image, args.out, _segmenters(args.models, args.device)):
        print(path)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import compositing
    from .figures import write_figures
    from .sample import sample_image

    image = sample_image()
    segmenter = _load(args)
    seg = segmenter.segment_person(image)
    out: Path = args.out
    outputs = {
        "segmentation_mask.png": compositing.to_mask(seg),
        "probabilities.png": np.round(seg.probabilities * 255).astype(np.uint8),
        "draw_mask.png": compositing.draw_mask(image, compositing.to_mask(seg), opacity=0.7),
        "bokeh.png": render(image, seg, EffectSettings(effect="bokeh")),
        "replace.png": render(image, seg, EffectSettings(effect="replace", background=(40, 160, 90, 255))),
        "cutout.png": render(image, seg, EffectSettings(effect="cutout")),
    }
    for name, picture in outputs.items():
        print(save_image(picture, out / name))
    for path in write_figures(image, out / "figures", {segmenter.name: segmenter}):
        print(path)
    return 0


def _cmd_video(args: argparse.Namespace) -> int:
    from .video import process_video

    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError(f"--max-frames must be at least 1; got {args.max_frames}")
    if not Path(args.input).exists():
        raise CLIError(f"no such video file or folder of frames: {args.input}")
    settings = _temporal(args, _settings(args))
    summary = process_video(args.input, args.output, _load(args), settings, audio=not args.no_audio,
                            progress=args.progress, fps=args.fps, max_frames=args.max_frames)
    print(summary)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from .evaluate import evaluate, find_pairs, format_summary, is_numbered_sequence

    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be at least 1; got {args.limit}")
    for folder in (args.images, args.masks):
        if not folder.is_dir():
            raise CLIError(f"no such folder: {folder}")
    pairs = find_pairs(args.images, args.masks)
    video = args.as_video if args.as_video is not None else is_numbered_sequence(s for s, _, _ in pairs)
    base = _temporal(args, EffectSettings(internal_resolution=args.internal_resolution, threshold=args.threshold,
                                          refine_edges=not args.no_refine))
    runs = [("settings", base)]
    if args.compare:
        runs = [("raw masks", base.updated(refine_edges=False, temporal_smoothing=False)),
                ("+ refine", base.updated(refine_edges=True, temporal_smoothing=False))]
        if video:  # photos are never smoothed
            runs += [("+ smoothing", base.updated(refine_edges=False, temporal_smoothing=True)),
                     ("+ both", base.updated(refine_edges=True, temporal_smoothing=True))]
    segmenter = _load(args)
    results = [evaluate(args.images, args.masks, segmenter, settings, video=video, limit=args.limit, label=label,
                        progress=args.progress) for label, settings in runs]
    if args.json:
        print(json.dumps([json.loads(r.to_json()) for r in results], indent=2))
        return 0
    first = results[0]
    what = f"{len(first.frames)} frames of one video" if video else f"{len(first.frames)} photos"
    print(f"{args.images}: {what}; model {first.model}")
    print(format_summary(results) if args.compare else first.table())
    if video:
        print("flicker: how much of the picture changes person/background between frames where the true mask "
              "does not (lower is steadier)")
    return 0


COMMANDS = {"demo": _cmd_demo, "effect": _cmd_effect, "figures": _cmd_figures, "fetch": _cmd_fetch,
            "models": _cmd_models, "video": _cmd_video, "evaluate": _cmd_evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CLIError, FileNotFoundError, ImageError, ValueError, TypeError) as exc:
        print(f"bgkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except WeightsUnavailableError as exc:
        print(f"bgkit {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
