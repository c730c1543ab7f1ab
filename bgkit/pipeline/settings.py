"""One settings schema for the whole pipeline: every knob, its range, step, label and unit.

:class:`EffectSettings` is validated once, when it is made (or :meth:`EffectSettings.updated`),
with messages that name the field and the bad value. The live widget's and the still explorer's
controls and the command line's options are generated from :data:`SCHEMA`
(:func:`bgkit.widgets.controls.make_control`, :func:`bgkit.cli.add_settings_options`), so a
range is declared here and nowhere else.

Fields whose default depends on the model (``internal_resolution``, ``segmentation_threshold``)
default to ``None`` = "the model's own" (its registry entry, :class:`bgkit.models.ModelSpec`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..core.checks import check_bool, check_number, interval
from ..core.colors import RGBA, parse_color
from ..core.segmentation import DEFAULT_EDGE_SOFTNESS, INTERNAL_RESOLUTIONS, InternalResolution, resolve_internal_resolution
from ..io.images import load_image
from ..ops import defaults
from ..ops.defaults import MAX_BLUR

__all__ = ["EFFECTS", "PART_EFFECTS", "SCHEMA", "EffectSettings", "Knob", "effects_for", "knob"]

#: What the pipeline can draw: the BodyPix demo's four effects, and three from its body parts
#: (a model with a body-part head, such as BodyPix, is needed for those: :data:`PART_EFFECTS`).
EFFECTS = ("mask", "bokeh", "replace", "cutout", "parts", "pixelated", "blur_face")
#: Effects drawn from the body parts: coloured part map, pixelated part map, the face blurred.
PART_EFFECTS = ("parts", "pixelated", "blur_face")


def effects_for(segmenter: Any) -> tuple[str, ...]:
    """The effects ``segmenter`` can draw: all of :data:`EFFECTS` for a model with a body-part
    head (``segmenter.has_parts``), the others without :data:`PART_EFFECTS`."""
    if getattr(segmenter, "has_parts", False):
        return EFFECTS
    return tuple(e for e in EFFECTS if e not in PART_EFFECTS)


@dataclass(frozen=True)
class Knob:
    """The schema of one setting.

    Attributes:
        name: the :class:`EffectSettings` field.
        kind: "choice", "number", "bool", "color", "resolution" or "image".
        label: a short label for a control.
        help: one sentence for tooltips and ``--help``.
        group: "segmentation" (changing it makes a new segmentation), "effect" (re-composites only) or
            "stream" (temporal smoothing of video and the live camera).
        lo, hi, lo_open, hi_open: the range of a number (bounds included unless open).
        step: slider step of a number.
        unit: unit of a number ("px", ...), "" if none.
        choices: the allowed values of a choice.
        effects: the effects it matters for (empty: all).
        model_default: ``None`` means "the model's default".
        flag: the command line option (``--flag``; booleans that default to True get ``--no-flag``).
    """

    name: str
    kind: str
    label: str
    help: str
    group: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    step: float | None = None
    unit: str = ""
    choices: tuple[Any, ...] = ()
    effects: tuple[str, ...] = ()
    model_default: bool = False
    flag: str = ""

    def validate(self, value: Any) -> Any:
        """``value`` checked and in canonical form; TypeError/ValueError naming the field and value."""
        if value is None and self.model_default:
            return None
        if self.kind == "number":
            v = check_number(value, self.name, self.lo, self.hi, lo_open=self.lo_open, hi_open=self.hi_open,
                             unit=self.unit)
            return int(v) if isinstance(self.step, int) and v == int(v) else v
        if self.kind == "bool":
            return check_bool(value, self.name)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(map(repr, self.choices))}; got {value!r}")
            return value
        if self.kind == "color":
            return parse_color(value, self.name)
        if self.kind == "resolution":
            resolve_internal_resolution(value)  # raises with the allowed values
            return value.strip().lower() if isinstance(value, str) else float(value)
        if self.kind == "image":
            if value is None:
                return None
            try:
                img = load_image(value)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{self.name}: {exc}") from None
            img.setflags(write=False)
            return img
        raise AssertionError(f"unknown kind {self.kind!r}")  # pragma: no cover - a schema bug

    @property
    def range_text(self) -> str:
        return interval(self.lo, self.hi, self.lo_open, self.hi_open) + (f" {self.unit}" if self.unit else "")


_SCHEMA: tuple[Knob, ...] = (
    Knob("effect", "choice", "effect",
         "what to draw: mask overlay, blurred background, new background, cut-out; with a body-part model also the "
         "coloured part map, a pixelated part map, or the face blurred", "effect", choices=EFFECTS, flag="effect"),
    Knob("internal_resolution", "resolution", "internal resolution",
         "scale of the picture the model sees: low (0.25), medium (0.5), high (0.75), full (1) or a number in (0, 2]; "
         "lower is faster and coarser", "segmentation", choices=tuple(INTERNAL_RESOLUTIONS), model_default=True,
         flag="internal-resolution"),
    Knob("segmentation_threshold", "number", "threshold", "person probability above which a pixel is 'person'",
         "segmentation", 0.0, 1.0, step=0.01, model_default=True, flag="threshold"),
    Knob("people", "choice", "people",
         "every person, or only the main one (the largest, or the one nearest the centre): 'only me'",
         "segmentation", choices=("all", "largest", "centre"), flag="people"),
    Knob("opacity", "number", "mask opacity", "opacity of the mask drawn over the picture", "effect", 0.0, 1.0,
         step=0.01, effects=("mask", "parts", "pixelated"), flag="opacity"),
    Knob("mask_blur_amount", "number", "mask blur", "Gaussian blur of the mask's edge (CSS blur)", "effect", 0.0,
         MAX_BLUR, step=0.5, unit="px", effects=("mask", "parts", "pixelated"), flag="mask-blur"),
    Knob("pixel_cell_width", "number", "pixel cell", "size of the cells of the pixelated part map", "effect", 1.0,
         64.0, step=1.0, unit="px", effects=("pixelated",), flag="pixel-cell-width"),
    Knob("background_blur_amount", "number", "background blur",
         "Gaussian blur of the background (bokeh), or of the blurred parts (blur_face)", "effect", 0.0,
         MAX_BLUR, step=0.5, unit="px", effects=("bokeh", "blur_face"), flag="background-blur"),
    Knob("edge_blur_amount", "number", "edge blur", "extra Gaussian feathering of the person's edge", "effect", 0.0,
         MAX_BLUR, step=0.5, unit="px", effects=("bokeh", "replace", "cutout", "blur_face"), flag="edge-blur"),
    Knob("edge_softness", "number", "edge softness",
         "width of the soft (anti-aliased) alpha ramp across the person's edge; 0 = a hard edge", "segmentation", 0.0, 8.0,
         step=0.25, unit="px", effects=("bokeh", "replace", "cutout"), flag="edge-softness"),
    Knob("foreground", "color", "mask person colour", "RGBA colour drawn over the person", "effect",
         effects=("mask",), flag="foreground"),
    Knob("background", "color", "background colour",
         "RGBA colour drawn over the background (mask), or the new background colour (replace)", "effect",
         effects=("mask", "replace"), flag="background"),
    Knob("background_image", "image", "background image", "new background picture (replace); None = the colour",
         "effect", effects=("replace",), flag="background-image"),
    Knob("flip_horizontal", "bool", "mirror", "mirror the output left-right (webcam 'mirror' view)", "effect",
         flag="flip"),
    Knob("refine_edges", "bool", "refine edges",
         "snap the mask to the picture's edges with a fast guided filter (models that predict a matte refine their own)",
         "segmentation", flag="refine"),
    Knob("refine_radius", "number", "refine radius", "guided filter window radius, in pixels of the model's input",
         "segmentation", 0.0, 64.0, lo_open=True, step=0.5, unit="model px", flag="refine-radius"),
    Knob("refine_eps", "number", "refine eps",
         "guided filter regulariser (colour variance, 0..1 units): smaller follows fainter edges", "segmentation", 0.0,
         1.0, lo_open=True, step=1e-4, flag="refine-eps"),
    Knob("temporal_smoothing", "bool", "temporal smoothing",
         "steady the mask over time in video and on the live camera (never on a still)", "stream", flag="smoothing"),
    Knob("temporal_ema", "number", "new-frame weight",
         "weight of the newest frame in the moving average; 1 = no averaging", "stream", 0.0, 1.0, lo_open=True,
         step=0.05, flag="ema"),
    Knob("temporal_motion_gate", "number", "motion gate",
         "probability change at which a pixel skips the average, so motion is not trailed; 0 = a plain average",
         "stream", 0.0, 1.0, step=0.05, flag="motion-gate"),
    Knob("hysteresis", "number", "hysteresis", "width of the on/off band around the threshold; 0 = none", "stream",
         0.0, 1.0, hi_open=True, step=0.05, flag="hysteresis"),
)

#: The schema, by field name, in display order.
SCHEMA: dict[str, Knob] = {k.name: k for k in _SCHEMA}


def knob(name: str) -> Knob:
    """The schema entry of setting ``name`` (KeyError names the known settings)."""
    try:
        return SCHEMA[name]
    except KeyError:
        raise KeyError(f"no setting {name!r}; settings: {', '.join(SCHEMA)}") from None


@dataclass(frozen=True)
class EffectSettings:
    """Every knob of the pipeline, validated (see :data:`SCHEMA` for ranges, labels and units).

    Attributes:
        effect: "mask" (coloured mask over the picture, BodyPix's ``drawMask``), "bokeh"
            (blurred background), "replace" (new background picture or colour), "cutout"
            (transparent background; RGBA out); with a body-part model (BodyPix) also "parts"
            (BodyPix's coloured part map), "pixelated" (its pixelated part map) and "blur_face"
            (the face blurred, for privacy).
        internal_resolution: scale of the picture the model sees ("low" 0.25, "medium" 0.5,
            "high" 0.75, "full" 1, or a number in (0, 2]); None = the model's default.
        segmentation_threshold: person probability (0..1) above which a pixel is "person";
            None = the model's default.
        people: "all", or only the main person: "largest" or "centre" (nearest the picture's
            centre); people are told apart by the model's instance split where it has one
            (BodyPix), else by the mask's connected parts.
        opacity: mask opacity, 0..1 ("mask", "parts", "pixelated").
        mask_blur_amount: Gaussian sigma in pixels of the mask's edge, 0..20 ("mask", "parts",
            "pixelated").
        pixel_cell_width: cell size in pixels of the pixelated part map, 1..64 ("pixelated").
        background_blur_amount: Gaussian sigma in pixels of the background, 0..20 ("bokeh"), or
            of the blurred body parts ("blur_face").
        edge_blur_amount: extra Gaussian feathering of the alpha in pixels, 0..20 (bokeh,
            replace, cutout). 0 by default: the soft alpha is already anti-aliased, and blurring
            it adds error at the edge (measured; see :func:`bgkit.core.segmentation.soft_alpha`).
        edge_softness: width in pixels of the alpha ramp across the edge, 0..8 (0 = hard).
        foreground, background: RGBA colours 0..255 (any form :func:`parse_color` takes) of the
            person and the background in "mask"; ``background`` is also the "replace" colour.
        background_image: the new background for "replace" (any image :func:`bgkit.load_image`
            takes; kept as an (H, W, 3) uint8 array); None = ``background`` colour.
        flip_horizontal: mirror the output picture left-right (segmentations never are).
        refine_edges: guided-filter edge refinement (:func:`bgkit.ops.refine.refine_t`).
        refine_radius, refine_eps: its window radius (model pixels) and regulariser.
        temporal_smoothing: smooth over time in streams (video files, the live camera).
        temporal_ema, temporal_motion_gate, hysteresis: see :class:`bgkit.TemporalSmoother`.
    """

    effect: str = "mask"
    internal_resolution: InternalResolution = None
    segmentation_threshold: float | None = None
    people: str = "all"
    opacity: float = 0.7
    mask_blur_amount: float = 0.0
    pixel_cell_width: float = 10.0
    background_blur_amount: float = 3.0
    edge_blur_amount: float = 0.0
    edge_softness: float = DEFAULT_EDGE_SOFTNESS
    foreground: RGBA = (0, 0, 0, 0)
    background: RGBA = (0, 0, 0, 255)
    background_image: Any = field(default=None, repr=False, compare=False)
    flip_horizontal: bool = False
    refine_edges: bool = True
    refine_radius: float = defaults.DEFAULT_RADIUS
    refine_eps: float = defaults.DEFAULT_EPS
    temporal_smoothing: bool = True
    temporal_ema: float = defaults.DEFAULT_EMA
    temporal_motion_gate: float = defaults.DEFAULT_MOTION_GATE
    hysteresis: float = defaults.DEFAULT_HYSTERESIS

    def __post_init__(self) -> None:
        errors: list[Exception] = []
        for f in dataclasses.fields(self):
            try:
                value = SCHEMA[f.name].validate(getattr(self, f.name))
            except (TypeError, ValueError) as exc:
                errors.append(exc)
                continue
            object.__setattr__(self, f.name, value)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ValueError(f"{len(errors)} settings are not valid: " + "; ".join(str(e) for e in errors))

    def updated(self, **changes: Any) -> "EffectSettings":
        """A copy with ``changes`` applied (validated; unknown names raise TypeError)."""
        unknown = set(changes) - set(SCHEMA)
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(sorted(unknown))}; settings: {', '.join(SCHEMA)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self, images: bool = False) -> dict[str, Any]:
        """The settings as plain values (JSON-friendly: tuples become lists); ``background_image``
        is left out unless ``images``."""
        out = {}
        for name in SCHEMA:
            if name == "background_image" and not images:
                continue
            v = getattr(self, name)
            out[name] = list(v) if isinstance(v, tuple) else v
        return out

    def changed(self, other: "EffectSettings") -> Iterator[str]:
        """Names of the settings that differ from ``other`` (``background_image`` by identity)."""
        for name in SCHEMA:
            a, b = getattr(self, name), getattr(other, name)
            if (a is not b) if name == "background_image" else (a != b):
                yield name
