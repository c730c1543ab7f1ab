"""Controls made from the settings schema: one ipywidget per :class:`bgkit.EffectSettings` field.

Both notebook widgets (:class:`bgkit.widgets.StillExplorer` and
:class:`bgkit.widgets.LiveBackground`) build their sliders, menus, colour pickers and check
boxes here, from :data:`bgkit.pipeline.settings.SCHEMA` -- ranges, steps, labels and units are
declared there only. :class:`SettingsControls` binds them both ways to an owner's settings:
moving a control applies the change (validated), and a change made in code moves the control.
Every control carries the CSS class ``bgkit-<field-name-with-dashes>`` (for tests and styling).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import numpy as np

from ..core.colors import hex_rgb, parse_color
from ..core.segmentation import INTERNAL_RESOLUTIONS
from ..pipeline.settings import SCHEMA, EffectSettings, Knob

__all__ = ["MODEL_DEFAULT", "SettingsControls", "image_from_upload", "make_control"]

#: Menu entry / value for "the model's own default" (internal resolution).
MODEL_DEFAULT = "model default"

_STYLE = {"description_width": "9em"}


def _layout(width: str = "24em") -> W.Layout:
    return W.Layout(width=width)


def css_class(name: str) -> str:
    """The CSS class of the control of setting ``name``."""
    return "bgkit-" + name.replace("_", "-")


def image_from_upload(upload: Any) -> np.ndarray | None:
    """The picture in a ``FileUpload`` (or its ``value``): the last file, as (H, W, 3) uint8 RGB;
    None if nothing was uploaded."""
    from PIL import Image

    from ..io.images import load_image

    value = getattr(upload, "value", upload)
    if not value:
        return None
    if isinstance(value, dict):  # ipywidgets 7: {name: {"content": ...}}
        value = list(value.values())
    item = list(value)[-1]
    content = item["content"] if isinstance(item, dict) else item.content
    with Image.open(io.BytesIO(bytes(content))) as im:
        im.load()
        return load_image(im)


def make_control(knob: Knob, value: Any) -> W.Widget:
    """The ipywidget for ``knob`` showing ``value`` (the value widget's ``.value`` is the setting,
    except for colours and images, which are composite; see :class:`SettingsControls`)."""
    label = f"{knob.label} ({knob.unit})" if knob.unit and knob.unit != "model px" else knob.label
    if knob.kind == "number":
        lo = knob.lo if knob.lo is not None else 0.0
        if knob.lo_open:
            lo = lo + (knob.step or 0.01)
        hi = knob.hi if knob.hi is not None else lo + 100
        if knob.hi_open:
            hi = hi - (knob.step or 0.01)
        fmt = ".4f" if (knob.step or 1) < 0.01 else ".2f" if (knob.step or 1) < 0.5 or hi <= 1 else ".1f"
        w: W.Widget = W.FloatSlider(value=float(value), min=lo, max=hi, step=knob.step or 0.01, description=label,
                                    readout_format=fmt, continuous_update=True, style=_STYLE, layout=_layout())
    elif knob.kind == "bool":
        w = W.Checkbox(value=bool(value), description=label, indent=False, layout=W.Layout(width="auto"))
    elif knob.kind == "choice":
        w = W.Dropdown(options=list(knob.choices), value=value, description=label, style=_STYLE, layout=_layout())
    elif knob.kind == "resolution":
        options = [(MODEL_DEFAULT, MODEL_DEFAULT)] + [(f"{k} ({v:g})", k) for k, v in INTERNAL_RESOLUTIONS.items()]
        w = W.Dropdown(options=options, value=MODEL_DEFAULT, description=label, style=_STYLE, layout=_layout())
    elif knob.kind == "color":
        picker = W.ColorPicker(concise=True, description=label, style=_STYLE, layout=W.Layout(width="13em"))
        alpha = W.IntSlider(min=0, max=255, description="alpha", style={"description_width": "3em"},
                            layout=W.Layout(width="11em"))
        w = W.HBox([picker, alpha])
    elif knob.kind == "image":
        choice = W.ToggleButtons(options=["colour", "picture"], description="replace with",
                                 style={"description_width": "9em", "button_width": "6em"})
        upload = W.FileUpload(accept="image/*", multiple=False, description="background picture",
                              layout=W.Layout(width="14em"))
        w = W.HBox([choice, upload])
    else:  # pragma: no cover - a schema bug
        raise ValueError(f"no control for kind {knob.kind!r}")
    w.add_class(css_class(knob.name))
    # the help on the control itself: ipywidgets 8's box views fail to render with a tooltip of their
    # own ("Cannot read properties of undefined (reading 'length')" in updateTooltip)
    (w.children[0] if isinstance(w, W.Box) else w).tooltip = knob.help
    return w


class SettingsControls:
    """Controls for ``names`` (fields of :class:`EffectSettings`), bound both ways to an owner.

    Args:
        get: returns the owner's current settings.
        apply: ``apply(**changes)`` validates and applies changes (raises on bad values).
        names: the settings to show, in order (default: all).
        resolve: ``resolve(name)`` -> the value to show for a field whose setting is None (the
            model's default, e.g. its threshold); None shows the knob's range start.
        notice: called with a message when a control's value is refused ("" when all is well).
        default_image: the picture used when "picture" is chosen and none was uploaded.

    :attr:`widgets` maps each name to its control; call :meth:`refresh` after the settings were
    changed in code, so the controls follow (without re-applying).
    """

    def __init__(
        self,
        get: Callable[[], EffectSettings],
        apply: Callable[..., Any],
        names: Sequence[str] | None = None,
        resolve: Callable[[str], Any] | None = None,
        notice: Callable[[str], None] | None = None,
        default_image: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self._get, self._apply = get, apply
        self._resolve = resolve or (lambda name: None)
        self._notice = notice or (lambda message: None)
        self._default_image = default_image
        self._quiet = threading.local()
        self.names = list(names) if names is not None else list(SCHEMA)
        s = get()
        self.widgets: dict[str, W.Widget] = {}
        for name in self.names:
            knob = SCHEMA[name]
            w = make_control(knob, self._shown(name, s))
            self.widgets[name] = w
            self._wire(knob, w)
        self.refresh()

    def __getitem__(self, name: str) -> W.Widget:
        return self.widgets[name]

    def _shown(self, name: str, s: EffectSettings) -> Any:
        value = getattr(s, name)
        if value is None:
            resolved = self._resolve(name)
            if resolved is not None:
                return resolved
            knob = SCHEMA[name]
            return knob.lo if knob.kind == "number" else value
        return value

    # -- control -> settings ---------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        if getattr(self._quiet, "on", False):
            return
        try:
            self._apply(**changes)
            self._notice("")
        except Exception as exc:  # noqa: BLE001 - refused: say why, show the old value again
            self._notice(f"{', '.join(changes)}: {exc}")
            self.refresh()

    def _wire(self, knob: Knob, w: W.Widget) -> None:
        name = knob.name
        if knob.kind == "color":
            picker, alpha = w.children

            def colour(_: Any) -> None:
                try:
                    rgb = parse_color(picker.value)[:3]
                except ValueError:
                    from PIL import ImageColor

                    rgb = ImageColor.getrgb(picker.value)[:3]
                self._set(**{name: (*rgb, int(alpha.value))})

            picker.observe(colour, names="value")
            alpha.observe(colour, names="value")
        elif knob.kind == "image":
            choice, upload = w.children
            self._uploaded: np.ndarray | None = None

            def chosen(_: Any) -> None:
                if choice.value == "colour":
                    self._set(**{name: None})
                else:
                    image = self._uploaded if self._uploaded is not None else (
                        self._default_image() if self._default_image else None)
                    if image is not None:
                        self._set(**{name: image})

            def uploaded(change: dict) -> None:
                try:
                    image = image_from_upload(change["new"])
                except Exception as exc:  # noqa: BLE001 - not a picture: say so
                    self._notice(f"{name}: not a picture ({exc})")
                    return
                if image is not None:
                    self._uploaded = image
                    self._set(**{name: image})

            choice.observe(chosen, names="value")
            upload.observe(uploaded, names="value")
        elif knob.kind == "resolution":
            w.observe(lambda c: self._set(**{name: None if c["new"] == MODEL_DEFAULT else c["new"]}), names="value")
        else:
            w.observe(lambda c: self._set(**{name: c["new"]}), names="value")

    def set_choices(self, name: str, choices: Sequence[str]) -> None:
        """Offer only ``choices`` in the dropdown of setting ``name`` (e.g. the effects a model can
        draw). If the current value is not among them, the first choice is applied."""
        w = self.widgets[name]
        choices = list(choices)
        if list(w.options) == choices:
            return
        current = getattr(self._get(), name)
        self._quiet.on = True
        try:
            w.options = choices
        finally:
            self._quiet.on = False
        if current not in choices:
            self._set(**{name: choices[0]})
        self.refresh()

    # -- settings -> controls --------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the owner's current settings in the controls (applying nothing)."""
        s = self._get()
        self._quiet.on = True
        try:
            for name, w in self.widgets.items():
                knob = SCHEMA[name]
                value = self._shown(name, s)
                if knob.kind == "color":
                    rgba = parse_color(value)
                    w.children[0].value = hex_rgb(rgba)
                    w.children[1].value = int(rgba[3])
                elif knob.kind == "image":
                    w.children[0].value = "colour" if value is None else "picture"
                elif knob.kind == "resolution":
                    v = MODEL_DEFAULT if value is None else value
                    if v not in [o[1] for o in w.options]:
                        w.options = list(w.options) + [(f"x{v:g}", v)]
                    w.value = v
                elif knob.kind == "number":
                    w.value = min(max(float(value), w.min), w.max)
                else:
                    w.value = value
        finally:
            self._quiet.on = False

    def close(self) -> None:
        for w in self.widgets.values():
            for child in getattr(w, "children", ()):
                child.close()
            w.close()
