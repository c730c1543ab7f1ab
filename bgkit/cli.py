"""The ``bgkit`` command line (also ``python -m bgkit``).

Subcommands:
    demo      the quick-start job: the bundled sample through every effect, plus the figures
    effect    apply one effect to an image and write the result
    figures   write the comparison figures for an image
    fetch     download/cache model weights up front
    models    list the registered models and whether their weights are here
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

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

    seg = load_segmenter(args.model, device=args.device, weights=args.weights)
    print(f"model: {seg.describe()}", file=sys.stderr)
    return seg


def _settings(args: argparse.Namespace) -> EffectSettings:
    bg_image = load_image(args.background_image) if args.background_image else None
    return EffectSettings(
        effect=args.effect, internal_resolution=args.internal_resolution, threshold=args.threshold,
        opacity=args.opacity, mask_blur_amount=args.mask_blur, background_blur_amount=args.background_blur,
        edge_blur_amount=args.edge_blur, foreground=args.foreground, background=args.background,
        background_image=bg_image, flip_horizontal=args.flip,
    )


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


COMMANDS = {"demo": _cmd_demo, "effect": _cmd_effect, "figures": _cmd_figures, "fetch": _cmd_fetch,
            "models": _cmd_models}


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
