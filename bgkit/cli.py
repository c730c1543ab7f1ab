"""The ``bgkit`` command line (also ``python -m bgkit``).

Subcommands:
    demo      the quick-start job: the bundled sample through every effect, plus the figures
    effect    apply one effect to an image and write the result
    figures   write the comparison figures for an image
    fetch     download/cache model weights up front
    models    list the registered models and whether their weights are here
    video     apply one effect to a video file (or a folder of frames), keeping fps and sound
    batch     apply one effect to every image and video in a folder (resumable; local or Ray)
    evaluate  measure mean IoU, boundary F-score and flicker against ground-truth masks

The effect options (``--effect``, ``--threshold``, ``--background-blur`` ...) are made from the
settings schema (:data:`bgkit.pipeline.settings.SCHEMA`): the same names, ranges and defaults as
:class:`bgkit.EffectSettings` and the widgets' controls. User errors print one line and exit 2;
unavailable weights and failed writes exit 1; an interrupt (Ctrl-C, SIGTERM) cleans up, prints
one line and exits 130.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from .pipeline.settings import SCHEMA, EffectSettings, Knob

__all__ = ["add_settings_options", "build_parser", "main", "settings_from_args"]

log = logging.getLogger("bgkit")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------------------------
# options from the schema


def _parser_for(knob: Knob) -> Any:
    def parse(text: str) -> Any:
        value: Any = text
        if knob.kind == "number":
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        elif knob.kind == "resolution" and text.lower() not in knob.choices:
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: use {', '.join(knob.choices)} or a number in (0, 2]") from None
        elif knob.kind == "image":
            return text  # loaded (and checked) when the settings are made
        try:
            return knob.validate(value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = knob.name  # argparse names the option's type in its messages
    return parse


def add_settings_options(parser: argparse.ArgumentParser, groups: Sequence[str] = ("segmentation", "effect")) -> None:
    """Add one option per setting of the schema in ``groups`` (defaults: the schema's)."""
    defaults = EffectSettings()
    for knob in SCHEMA.values():
        if knob.group not in groups:
            continue
        default = getattr(defaults, knob.name)
        shown = "the model's" if knob.model_default and default is None else (
            "none" if default is None else f"{default:g}" if isinstance(default, float) else str(default))
        help_text = f"{knob.help} ({knob.range_text if knob.kind == 'number' else knob.kind}; default {shown})"
        dest = knob.name
        if knob.kind == "bool":
            if default:
                parser.add_argument(f"--no-{knob.flag}", dest=dest, action="store_false", default=argparse.SUPPRESS,
                                    help=f"turn off: {knob.help}")
            else:
                parser.add_argument(f"--{knob.flag}", dest=dest, action="store_true", default=argparse.SUPPRESS,
                                    help=knob.help)
            continue
        kw: dict[str, Any] = dict(dest=dest, default=argparse.SUPPRESS, type=_parser_for(knob), help=help_text)
        if knob.kind == "choice":
            kw["choices"] = knob.choices
            kw.pop("type")
        parser.add_argument(f"--{knob.flag}", **kw)


def settings_from_args(args: argparse.Namespace) -> EffectSettings:
    """The :class:`EffectSettings` the options say (schema defaults for the rest)."""
    given = {name: getattr(args, name) for name in SCHEMA if hasattr(args, name)}
    return EffectSettings(**given)


def _model_choice(text: str) -> str:
    from .models.registry import list_models

    if text != "auto" and text not in list_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose from auto, {', '.join(list_models())}")
    return text


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from .models.backends import BACKENDS

    p.add_argument("--model", type=_model_choice, default="auto",
                   help="segmenter: auto (default: deeplabv3 if its weights are here, else selfie; with --weights, "
                        "the model that reads that file), or a name from 'bgkit models'")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda or mps")
    p.add_argument("--weights", default=None, help="weights file for the model (default: its official weights)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the network runs: auto (default: the fastest installed), eager, torch, onnxruntime, openvino")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {text}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be above 0; got {text}")
    return v


def _nonnegative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {text}")
    return v


def _fps(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= v <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 1000; got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bgkit", description="Remove, blur or replace the background behind a person.")
    parser.add_argument("-v", "--verbose", action="store_true", help="more messages (debug level)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="the bundled sample photo through every effect, plus the comparison figures")
    p.add_argument("-o", "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    _add_model_options(p)
    add_settings_options(p, groups=("segmentation",))

    p = sub.add_parser("effect", help="apply an effect to an image")
    p.add_argument("image", help="input image file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image file (.png keeps transparency)")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    _add_model_options(p)
    add_settings_options(p)

    p = sub.add_parser("figures", help="write the comparison figures for an image")
    p.add_argument("image", help="input image file")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--models", default=None,
                   help="comma-separated models to compare (default: every model whose weights are here)")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda or mps")
    add_settings_options(p, groups=("segmentation",))

    p = sub.add_parser("fetch", help="download and cache model weights, so later runs work offline")
    p.add_argument("models", nargs="*", default=["selfie"], help="model names, or 'all' (default: selfie)")

    sub.add_parser("models", help="list the registered models")

    p = sub.add_parser("video", help="apply an effect to a video file or a folder of frames")
    p.add_argument("input", help="input video file, or a folder of numbered image frames")
    p.add_argument("output", type=Path,
                   help="output file (.mp4, .mov, .mkv, .webm; cutout needs .webm, .mov or .mkv), "
                        "or a folder for PNG frames")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    _add_model_options(p)
    add_settings_options(p, groups=("segmentation", "effect", "stream"))
    p.add_argument("--no-audio", action="store_true", help="drop the audio track (kept by default)")
    p.add_argument("--fps", type=_fps, default=None,
                   help="frame rate of a folder of frames (default 25; a video file keeps its own)")
    p.add_argument("--max-frames", type=_positive_int, default=None, help="stop after this many frames")
    p.add_argument("--no-progress", "-q", dest="progress", action="store_false", help="no progress bar")

    p = sub.add_parser("batch", help="apply an effect to every image and video in a folder (resumable)")
    p.add_argument("input", type=Path, help="input folder, searched recursively for images and videos (or one file)")
    p.add_argument("output", type=Path,
                   help="output folder: the same relative paths (the suffix the effect needs) and the manifest "
                        "bgkit-manifest.jsonl; not the input folder (inside it, it is left out of the scan)")
    p.add_argument("--overwrite", action="store_true", help="redo every file (default: skip complete outputs)")
    p.add_argument("--image-format", default=None, choices=("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"),
                   help="write images as this (default: the input's format; png for cut-outs of formats "
                        "without transparency)")
    p.add_argument("--video-format", default=None, choices=("mp4", "m4v", "mov", "mkv", "webm"),
                   help="write videos as this (default: the input's where bgkit writes it, else mp4; webm for "
                        "cut-outs)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default: this machine) or ray (a Ray cluster; pip install 'bgkit[ray]')")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="photos at once: local, threads sharing the model (default: one more than the CPUs, at most 8); ray, model replicas, "
                        "each loading the model once (default: one per CPU, or per GPU with --gpus-per-worker)")
    p.add_argument("--address", default=None,
                   help="ray: the cluster ('auto': the one this machine is in; ray://head:10001; default: start "
                        "Ray on this machine)")
    p.add_argument("--cpus-per-worker", type=_positive_float, default=1.0, help="ray: CPUs per worker (default 1)")
    p.add_argument("--gpus-per-worker", type=_nonnegative_float, default=0.0,
                   help="ray: GPUs per worker (default 0; e.g. 1, or 0.5 to share one)")
    p.add_argument("--batch-size", type=_positive_int, default=4, help="ray: files per map_batches call (default 4)")
    _add_model_options(p)
    add_settings_options(p, groups=("segmentation", "effect", "stream"))
    p.add_argument("--no-audio", action="store_true", help="drop videos' audio tracks (kept by default)")
    p.add_argument("--no-progress", "-q", dest="progress", action="store_false", help="no progress bar")

    p = sub.add_parser("evaluate", help="measure quality against ground-truth masks (IoU, boundary F, flicker)")
    p.add_argument("--images", type=Path, required=True,
                   help="folder of images; numbered frames (00000.jpg, ...) are evaluated as one video")
    p.add_argument("--masks", type=Path, required=True, help="folder of masks with the same names (255 = person)")
    _add_model_options(p)
    add_settings_options(p, groups=("segmentation", "stream"))
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--video", dest="as_video", action="store_const", const=True, default=None,
                      help="treat the images as one video in name order (default: when the names are numbers)")
    kind.add_argument("--photos", dest="as_video", action="store_const", const=False,
                      help="treat the images as independent photos")
    p.add_argument("--compare", action="store_true",
                   help="also measure without smoothing and/or refinement, one row each")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first N images")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", "-q", dest="progress", action="store_false", help="no progress bar")
    return parser


# ----------------------------------------------------------------------------------------------
# commands


def _cmd_models(_: argparse.Namespace) -> int:
    from .models.registry import get_spec, list_models

    names = list_models()
    width = max(len(n) for n in names) + 2
    for name in names:
        spec = get_spec(name)
        size = f"{spec.native_size[1]}x{spec.native_size[0]}" if spec.native_size else "any size"
        here = "weights here" if spec.is_available() else "weights not here"
        opt = " (opt-in)" if spec.opt_in else ""
        print(f"{name:{width}s} {size:10s} {here:17s} {spec.title}{opt}  [licence: {spec.licence}]")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    import torch

    from .models.registry import WeightsUnavailableError, get_spec, list_models

    names = list_models() if args.models == ["all"] else args.models
    failed = 0
    for name in names:
        if name not in list_models():
            raise CLIError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
        try:
            get_spec(name).build(None, torch.device("cpu"))
            print(f"{name}: ready")
        except WeightsUnavailableError as exc:
            failed += 1
            print(f"{name}: NOT available: {exc}", file=sys.stderr)
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> Any:
    from .models.segmenter import load_segmenter

    seg = load_segmenter(args.model, device=args.device, weights=args.weights, backend=args.backend)
    log.info("model: %s", seg.describe())
    return seg


def _cmd_effect(args: argparse.Namespace) -> int:
    from .io.images import ALPHA_SUFFIXES, load_image, save_image
    from .io.outputs import check_output
    from .pipeline import Pipeline

    settings = settings_from_args(args)
    out_path = check_output(args.output, inputs=(args.image,), overwrite=args.overwrite)
    if settings.effect == "cutout" and out_path.suffix.lower() not in ALPHA_SUFFIXES:
        raise CLIError(f"{out_path.name}: the cutout effect is transparent; write one of {', '.join(ALPHA_SUFFIXES)}")
    image = load_image(args.image)
    result = Pipeline(_load(args), settings).process(image)
    save_image(result.picture, out_path)
    seg = result.segmentation
    h, w = seg.model_input_size
    print(f"{out_path}  ({settings.effect}; model {seg.model}, input {w}x{h}, {seg.elapsed_ms:.0f} ms)")
    return 0


def _segmenters(names: str | None, device: str) -> dict[str, Any]:
    from .models.registry import available_models, list_models
    from .models.segmenter import load_segmenter

    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else available_models()
    for n in chosen:
        if n not in list_models():
            raise CLIError(f"unknown model {n!r}; choose from {', '.join(list_models())}")
    return {n: load_segmenter(n, device=device) for n in (chosen or ["selfie"])}


def _check_folder(path: Path) -> Path:
    from .io.outputs import OutputError, check_output

    try:
        return check_output(path, overwrite=True, directory=True)
    except OutputError as exc:
        raise CLIError(str(exc)) from None


def _cmd_figures(args: argparse.Namespace) -> int:
    from .core.deps import require
    from .io.images import load_image

    require("matplotlib", "bgkit figures")
    from .eval.figures import write_figures

    out = _check_folder(args.out)
    image = load_image(args.image)
    for path in write_figures(image, out, _segmenters(args.models, args.device), settings=settings_from_args(args)):
        print(path)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .core.deps import has
    from .io.images import save_image
    from .io.sample import sample_backdrop, sample_image
    from .pipeline import Pipeline

    out = _check_folder(args.out)
    image = sample_image()
    pipe = Pipeline(_load(args), settings_from_args(args))
    base = pipe.settings
    looks = {
        "draw_mask.png": base.updated(effect="mask"),
        "bokeh.png": base.updated(effect="bokeh", background_blur_amount=6),
        "replace.png": base.updated(effect="replace", background_image=sample_backdrop(*image.shape[:2])),
        "replace_colour.png": base.updated(effect="replace", background=(40, 160, 90, 255)),
        "cutout.png": base.updated(effect="cutout"),
    }
    seg = None
    for name, look in looks.items():
        pipe.settings = look
        result = pipe.process(image)
        seg = result.segmentation
        print(save_image(result.picture, out / name))
    assert seg is not None
    print(save_image(np.round(seg.probabilities * 255).astype(np.uint8), out / "probabilities.png"))
    print(save_image(np.round(seg.alpha * 255).astype(np.uint8), out / "alpha.png"))
    if has("matplotlib"):
        from .eval.figures import write_figures

        for path in write_figures(image, out / "figures", {pipe.segmenter.name: pipe.segmenter}, settings=base):
            print(path)
    else:
        log.warning("bgkit demo: no figures: matplotlib is not installed (pip install 'bgkit[figures]')")
    return 0


def _cmd_video(args: argparse.Namespace) -> int:
    from .jobs.video import process_video
    from .pipeline import Pipeline

    if not Path(args.input).exists():
        raise CLIError(f"no such video file or folder of frames: {args.input}")
    settings = settings_from_args(args)
    summary = process_video(args.input, args.output, Pipeline(_load(args), settings), audio=not args.no_audio,
                            progress=args.progress, fps=args.fps, max_frames=args.max_frames, overwrite=args.overwrite)
    print(summary)
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from .jobs.batch import ModelRef, process_batch

    settings = settings_from_args(args)
    if not args.input.exists():
        raise CLIError(f"no such input folder or file: {args.input}")
    # the model is loaded only if there is work (local), or on each Ray worker
    model = ModelRef(args.model, device=args.device, weights=args.weights, backend=args.backend)
    ray_options = None
    if args.engine == "ray":
        from .core.deps import has

        if not args.verbose and has("ray"):
            import ray.data  # noqa: F401 - Ray Data sets up its loggers when imported; quieted here

            logging.getLogger("ray").setLevel(logging.WARNING)
            logging.getLogger("ray.data").setLevel(logging.ERROR)  # per-job lines; bgkit shows the progress
        ray_options = {"address": args.address, "cpus_per_worker": args.cpus_per_worker,
                       "gpus_per_worker": args.gpus_per_worker, "batch_size": args.batch_size}
    elif args.address is not None:
        raise CLIError("--address: only for --engine ray")
    summary = process_batch(args.input, args.output, model, settings, overwrite=args.overwrite, engine=args.engine,
                            workers=args.workers, image_suffix=args.image_format, video_suffix=args.video_format,
                            audio=not args.no_audio, progress=args.progress, ray=ray_options)
    print(summary)
    return 0 if summary.ok else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from .eval.evaluate import evaluate, find_pairs, format_summary, is_numbered_sequence, is_video

    for folder in (args.images, args.masks):
        if not folder.is_dir():
            raise CLIError(f"no such folder: {folder}")
    pairs = find_pairs(args.images, args.masks)
    video = args.as_video
    if video is None:
        video = is_video(pairs)
        if not video and is_numbered_sequence(s for s, _, _ in pairs):
            log.info("bgkit evaluate: the images are numbered but not named like video frames (00000.png) or differ "
                     "in size: evaluating them as photos; pass --video to evaluate them as one video")
    base = settings_from_args(args)
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
            "models": _cmd_models, "video": _cmd_video, "batch": _cmd_batch, "evaluate": _cmd_evaluate}


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    from .tuning import tune_process

    tune_process()  # before torch loads: this process runs frames back to back (see bgkit.tuning)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    from .core.deps import MissingDependencyError
    from .io.images import ImageError
    from .io.outputs import OutputError
    from .models.registry import WeightsUnavailableError

    try:
        return COMMANDS[args.command](args)
    except (CLIError, FileNotFoundError, ImageError, OutputError, ValueError, TypeError, MissingDependencyError) as exc:
        print(f"bgkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except WeightsUnavailableError as exc:
        print(f"bgkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a write that failed: disk full, permission, a path under a file ...
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"bgkit {args.command}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bgkit {args.command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
