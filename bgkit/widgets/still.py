"""``StillExplorer``: one photo, every BodyPix knob as a live control (ipywidgets).

::

    from bgkit.widgets import StillExplorer
    explorer = StillExplorer(image)      # or StillExplorer(image, segmenter=seg)
    explorer                             # last expression of a cell: shows it

Changing the model, the internal resolution or the threshold segments the photo again; every
other control only re-composites the last segmentation (``bgkit.pipeline.render``).

Work happens on one background thread so the controls stay responsive. Updates coalesce: while
a picture is being made, only the newest requested settings are kept (older requests are
dropped, never queued), and the worker picks them up when it is done. Widget callbacks may
arrive on another thread (JupyterLab's comms over subshells), so the shared state is guarded by
a ``threading.Lock``.

For tests and scripts: :meth:`StillExplorer.set` moves the controls like a person would (same
callbacks), :meth:`StillExplorer.wait` blocks until the picture is up to date, and
``settings``, ``output``, ``segmentation``, ``render_count`` and ``segment_count`` tell what
happened.
"""

from __future__ import annotations

import io
import math
import os
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image

from ..compositing import parse_color
from ..imageio import ImageLike, load_image, save_image
from ..models.registry import available_models
from ..pipeline import EFFECTS, EffectSettings, render
from ..segmentation import INTERNAL_RESOLUTIONS, Segmentation, resolve_internal_resolution
from ..segmenter import Segmenter, load_segmenter

log = logging.getLogger(__name__)

__all__ = ["StillExplorer", "default_out_dir", "encode_png", "image_from_upload", "pick_image"]

#: Longest side of the preview picture (the saved picture and ``output`` keep full size).
PREVIEW_MAX_SIDE = 720
_MAX_BLUR = 20
_DESC = {"description_width": "130px"}


def _wide() -> W.Layout:
    return W.Layout(width="380px")


_PREVIEW_PX = 460  # width of the preview on the page (the controls take 400 px beside it)


def default_out_dir() -> Path:
    """``$BGKIT_OUT_DIR`` if set, else ``./out``: where notebooks and widgets write files."""
    return Path(os.environ.get("BGKIT_OUT_DIR") or "out")


def encode_png(picture: np.ndarray, max_side: int | None = None) -> bytes:
    """PNG bytes of an RGB/RGBA uint8 picture, scaled down to ``max_side`` if it is larger."""
    im = Image.fromarray(np.ascontiguousarray(picture))
    if max_side and max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def image_from_upload(upload: Any) -> np.ndarray | None:
    """The picture in an ``ipywidgets.FileUpload`` (the last file), or None if nothing was uploaded."""
    value = getattr(upload, "value", upload)
    if not value:
        return None
    if isinstance(value, Mapping):  # ipywidgets 7: {name: {"content": ...}}
        value = list(value.values())
    item = list(value)[-1]
    content = item["content"] if isinstance(item, Mapping) else item.content
    with Image.open(io.BytesIO(bytes(content))) as im:
        im.load()
        return load_image(im)


def pick_image(upload: Any = None, path: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """The photo to work on, and where it came from: the uploaded file if there is one, else
    ``path`` if given, else bgkit's bundled sample photo."""
    img = image_from_upload(upload) if upload is not None else None
    if img is not None:
        value = upload.value
        name = (list(value.values())[-1] if isinstance(value, Mapping) else list(value)[-1]).get("name", "upload")
        return img, f"uploaded file {name!r}"
    if path:
        return load_image(path), str(path)
    from ..sample import SAMPLE_CREDIT, sample_image_path

    return load_image(sample_image_path()), f"bundled sample photo ({SAMPLE_CREDIT})"


def _hex(rgba: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgba[:3]))


def _picker_rgb(value: str) -> tuple[int, int, int]:
    """RGB of a ColorPicker value ('#rrggbb', '#rgb' or a CSS colour name typed by hand)."""
    from PIL import ImageColor

    try:
        return parse_color(value)[:3]
    except ValueError:
        try:
            return tuple(ImageColor.getrgb(value)[:3])  # type: ignore[return-value]
        except ValueError:
            raise ValueError(f"not a colour: {value!r}") from None


class StillExplorer(W.VBox):
    """Explore every BodyPix setting on one photo.

    Args:
        image: the photo (anything :func:`bgkit.load_image` takes); None = the bundled sample.
        segmenter: a loaded :class:`~bgkit.Segmenter` to start with (None: the first model in
            ``models``, loaded on first use).
        models: the names in the model menu: a sequence of registry names, or a mapping
            ``{label: Segmenter or None}`` (None = ``load_segmenter(label)`` on first use).
            Default: :func:`bgkit.available_models` (plus ``segmenter``'s name). Each model is
            loaded at most once and kept in this explorer (no global cache).
        settings: the starting :class:`~bgkit.pipeline.EffectSettings` (its ``background_image``
            is used by the "replace" effect; None = a plain colour). An ``internal_resolution``
            of None starts at "medium"; scales outside the slider's 0.1..1 are clipped to it.
        device: where lazily loaded models run ("auto", "cpu", "cuda", ...).
        save_dir: folder for the Save button (default ``$BGKIT_OUT_DIR/explorer`` or ``out/explorer``).
        preview_max_side: longest side of the preview picture in pixels.
    """

    def __init__(
        self,
        image: ImageLike | None = None,
        segmenter: Segmenter | None = None,
        models: Sequence[str] | Mapping[str, Segmenter | None] | None = None,
        *,
        settings: EffectSettings | None = None,
        device: str = "auto",
        save_dir: str | os.PathLike | None = None,
        preview_max_side: int = PREVIEW_MAX_SIDE,
    ) -> None:
        super().__init__()
        if image is None:
            from ..sample import sample_image

            image = sample_image()
        self._image = load_image(image)
        if settings is not None and not isinstance(settings, EffectSettings):
            raise TypeError(f"settings must be an EffectSettings; got {type(settings).__name__}")
        if segmenter is not None and not callable(getattr(segmenter, "segment_person", None)):
            raise TypeError(f"segmenter must be a bgkit Segmenter; got {type(segmenter).__name__}")
        base = settings if settings is not None else EffectSettings(internal_resolution="medium")
        self._background_image = base.background_image
        self._device = device
        self._save_dir = Path(save_dir) if save_dir is not None else default_out_dir() / "explorer"
        self._preview_max_side = int(preview_max_side)

        # --- models: name -> Segmenter (loaded) or None (load on first use) ---------------------
        self._segmenters: dict[str, Segmenter | None] = {}
        if isinstance(models, Mapping):
            self._segmenters.update({str(k): v for k, v in models.items()})
        elif models is not None:
            if isinstance(models, str):
                raise TypeError("models must be a sequence of names or a mapping, not a single string")
            self._segmenters.update({str(n): None for n in models})
        else:
            self._segmenters.update({n: None for n in available_models()})
        if segmenter is not None:
            name = next((k for k, v in self._segmenters.items() if v is segmenter), None)
            if name is None:
                name = segmenter.name if self._segmenters.get(segmenter.name) is None else f"{segmenter.name} (given)"
                self._segmenters[name] = segmenter
            first = name
        elif self._segmenters:
            first = next(iter(self._segmenters))
        else:  # nothing cached on this machine: let "auto" fetch what it can
            seg = load_segmenter("auto", device=device)
            self._segmenters[seg.name] = seg
            first = seg.name

        # --- shared state (guarded by _lock) ----------------------------------------------------
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: tuple[str, EffectSettings] | None = None
        self._busy = False
        self._worker: threading.Thread | None = None
        self._seg_key: tuple | None = None
        self._segmentation: Segmentation | None = None
        self._output: np.ndarray | None = None
        self._rendered: EffectSettings | None = None
        self._render_count = 0
        self._segment_count = 0
        self._last_status = ""
        self._saved_note = ""
        self.last_error: BaseException | None = None
        self._syncing = False  # set while one control updates its twin (same thread only)
        self._batching = False  # set while set() moves several controls: one update at the end

        # --- controls ---------------------------------------------------------------------------
        self.controls = self._make_controls(first, base)
        self.preview = W.Image(format="png", layout=W.Layout(width="auto", max_width=f"{_PREVIEW_PX}px",
                                                             height="auto"))
        self.preview.add_class("bgkit-preview")
        self.status = W.HTML(value="", layout=W.Layout(width=f"{_PREVIEW_PX}px"))
        self.status.add_class("bgkit-status")
        self.save_button = W.Button(description="Save PNG", icon="download", tooltip=f"save into {self._save_dir}")
        self.save_button.add_class("bgkit-save")
        self.save_button.on_click(lambda _b: self.save())

        c = self.controls
        left = W.VBox(
            [
                W.HTML("<b>Segmentation</b> (re-runs the model)"),
                c["model"],
                W.HBox([W.HTML("<div style='text-align:right; padding-right:8px'>internal res.</div>",
                               layout=W.Layout(width="122px")), c["resolution"]]),
                c["scale"], c["threshold"],
                W.HTML("<b>Effect</b> (re-composites only)"),
                c["effect"], c["opacity"], c["mask_blur"], c["background_blur"], c["edge_blur"],
                W.HBox([c["foreground"], c["foreground_alpha"]]),
                W.HBox([c["background"], c["background_alpha"]]),
                c["flip"],
            ],
            layout=W.Layout(width="445px"),
        )
        right = W.VBox([self.preview, self.status, self.save_button], layout=W.Layout(width=f"{_PREVIEW_PX + 8}px"))
        self.children = [W.HBox([left, right], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))]
        self.add_class("bgkit-still")

        for key in ("model", "threshold", "effect", "opacity", "mask_blur", "background_blur", "edge_blur",
                    "foreground", "foreground_alpha", "background", "background_alpha", "flip"):
            c[key].observe(self._on_change, names="value")
        c["resolution"].observe(self._on_resolution, names="value")
        c["scale"].observe(self._on_scale, names="value")

        # The first picture is made right here, so the explorer shows it as soon as it displays.
        self._run(self._job())

    # ------------------------------------------------------------------------------------------
    # controls

    def _make_controls(self, model: str, s: EffectSettings) -> dict[str, W.Widget]:
        res = s.internal_resolution
        if res is None:  # the explorer always names a scale; BodyPix's demo starts at "medium"
            res = "medium"
        if isinstance(res, str):
            res = res.lower()
        scale = resolve_internal_resolution(res)
        toggle = res if isinstance(res, str) else next(
            (k for k, v in INTERNAL_RESOLUTIONS.items() if math.isclose(v, scale)), None)
        fg, bg = parse_color(s.foreground, "foreground"), parse_color(s.background, "background")
        def slider() -> dict[str, Any]:
            return dict(style=_DESC, layout=_wide(), continuous_update=True)

        c: dict[str, W.Widget] = {
            "model": W.Dropdown(options=list(self._segmenters), value=model, description="model",
                                style=_DESC, layout=_wide()),
            # no description: ToggleButtons puts it on a line of its own; see the HBox in __init__
            "resolution": W.ToggleButtons(options=list(INTERNAL_RESOLUTIONS), value=toggle,
                                          style={"button_width": "74px"}, tooltips=[
                                              f"{k}: the photo is scaled by {v:g} before the model"
                                              for k, v in INTERNAL_RESOLUTIONS.items()]),
            "scale": W.FloatSlider(value=min(1.0, max(0.1, scale)), min=0.1, max=1.0, step=0.05,
                                   description="res. scale", readout_format=".2f", **slider()),
            "threshold": W.FloatSlider(value=s.threshold, min=0.0, max=1.0, step=0.05,
                                       description="threshold", readout_format=".2f", **slider()),
            "effect": W.Dropdown(options=list(EFFECTS), value=s.effect, description="effect", style=_DESC,
                                 layout=_wide()),
            "opacity": W.FloatSlider(value=s.opacity, min=0.0, max=1.0, step=0.05, description="opacity (mask)",
                                     readout_format=".2f", **slider()),
            "mask_blur": W.IntSlider(value=round(s.mask_blur_amount), min=0, max=_MAX_BLUR,
                                     description="mask blur (mask)", **slider()),
            "background_blur": W.IntSlider(value=round(s.background_blur_amount), min=0, max=_MAX_BLUR,
                                           description="bg blur (bokeh)", **slider()),
            "edge_blur": W.IntSlider(value=round(s.edge_blur_amount), min=0, max=_MAX_BLUR,
                                     description="edge blur", **slider()),
            "foreground": W.ColorPicker(value=_hex(fg), description="foreground (mask)", concise=True,
                                        style=_DESC, layout=W.Layout(width="180px")),
            "foreground_alpha": W.IntSlider(value=fg[3], min=0, max=255, description="alpha",
                                            style={"description_width": "40px"}, layout=W.Layout(width="210px")),
            "background": W.ColorPicker(value=_hex(bg), description="background", concise=True, style=_DESC,
                                        layout=W.Layout(width="180px")),
            "background_alpha": W.IntSlider(value=bg[3], min=0, max=255, description="alpha",
                                            style={"description_width": "40px"}, layout=W.Layout(width="210px")),
            "flip": W.Checkbox(value=bool(s.flip_horizontal), description="flip horizontal (mirror)",
                               indent=False),
        }
        for key, widget in c.items():
            widget.add_class(f"bgkit-{key.replace('_', '-')}")
        return c

    def _on_change(self, change: Any = None) -> None:
        if not (self._syncing or self._batching):
            self._schedule()

    def _on_resolution(self, change: Any) -> None:
        if self._syncing or change["new"] is None:
            return
        self._syncing = True
        try:
            self.controls["scale"].value = INTERNAL_RESOLUTIONS[change["new"]]
        finally:
            self._syncing = False
        if not self._batching:
            self._schedule()

    def _on_scale(self, change: Any) -> None:
        if self._syncing:
            return
        name = next((k for k, v in INTERNAL_RESOLUTIONS.items() if math.isclose(v, change["new"])), None)
        self._syncing = True
        try:
            self.controls["resolution"].value = name
        finally:
            self._syncing = False
        if not self._batching:
            self._schedule()

    def _control_settings(self) -> EffectSettings:
        c = self.controls
        res = c["resolution"].value
        return EffectSettings(
            effect=c["effect"].value,
            internal_resolution=res if res is not None else round(float(c["scale"].value), 4),
            threshold=float(c["threshold"].value),
            opacity=float(c["opacity"].value),
            mask_blur_amount=float(c["mask_blur"].value),
            background_blur_amount=float(c["background_blur"].value),
            edge_blur_amount=float(c["edge_blur"].value),
            foreground=(*_picker_rgb(c["foreground"].value), int(c["foreground_alpha"].value)),
            background=(*_picker_rgb(c["background"].value), int(c["background_alpha"].value)),
            background_image=self._background_image,
            flip_horizontal=bool(c["flip"].value),
        )

    def _job(self) -> tuple[str, EffectSettings]:
        return str(self.controls["model"].value), self._control_settings()

    # ------------------------------------------------------------------------------------------
    # the worker: newest pending settings only

    def _schedule(self) -> None:
        job = self._job()
        with self._lock:
            self._pending = job  # replaces any older request that was not started yet
            if self._busy:
                return
            self._busy = True
            self._worker = threading.Thread(target=self._work, name="bgkit-still-explorer", daemon=True)
            worker = self._worker
        worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._busy = False
                    self._idle.notify_all()
                    return
            try:
                self._run(job)
            except BaseException as exc:  # shown in the status line; the explorer keeps working
                self.last_error = exc
                self._show_status(
                    f"<span style='color:#b00'>error: {escape(type(exc).__name__)}: {escape(str(exc))}</span>"
                )
                log.warning("StillExplorer update failed", exc_info=True)

    def _segmenter(self, name: str) -> Segmenter:
        with self._lock:
            seg = self._segmenters.get(name)
        if seg is None:
            self._show_status(f"loading model {escape(name)}...")
            seg = load_segmenter(name, device=self._device)
            with self._lock:
                self._segmenters[name] = seg
        return seg

    def _run(self, job: tuple[str, EffectSettings]) -> None:
        name, s = job
        res = s.internal_resolution
        key = (name, resolve_internal_resolution(res) if res is not None else None, float(s.threshold))
        with self._lock:
            segmentation = self._segmentation if self._seg_key == key else None
        segmenter = self._segmenter(name)
        reused = segmentation is not None
        if segmentation is None:
            segmentation = segmenter.segment_person(
                self._image, internal_resolution=res, segmentation_threshold=s.threshold
            )
            with self._lock:
                self._segmentation, self._seg_key = segmentation, key
                self._segment_count += 1
        t0 = time.perf_counter()
        out = render(self._image, segmentation, s)
        render_ms = (time.perf_counter() - t0) * 1000.0
        png = encode_png(out, self._preview_max_side)
        in_w, in_h = segmentation.model_input_size
        status = (
            f"<b>{escape(name)}</b> on {escape(str(getattr(segmenter, 'device', '?')))} &middot; "
            f"segmentation <b>{segmentation.elapsed_ms:.0f} ms</b>{' (reused)' if reused else ''} &middot; "
            f"model input <b>{in_w}x{in_h}</b> px "
            f"&middot; {escape(s.effect)} rendered in {render_ms:.0f} ms"
        )
        with self._lock:
            self._output, self._rendered = out, s
            self._render_count += 1
            self._last_status = status
        self.preview.value = png
        self._show_status(status)

    def _show_status(self, text: str) -> None:
        with self._lock:
            note = self._saved_note
        self.status.value = text + (f"<br>{note}" if note else "")

    # ------------------------------------------------------------------------------------------
    # public

    @property
    def image(self) -> np.ndarray:
        """The photo being explored ((H, W, 3) uint8 RGB)."""
        return self._image

    @property
    def settings(self) -> EffectSettings:
        """The settings the controls show now (the picture follows once :meth:`wait` returns)."""
        return self._control_settings()

    @property
    def rendered_settings(self) -> EffectSettings | None:
        """The settings of the picture currently shown."""
        with self._lock:
            return self._rendered

    @property
    def output(self) -> np.ndarray | None:
        """The current picture at full size: (H, W, 3) RGB, or (H, W, 4) RGBA for "cutout"."""
        with self._lock:
            return self._output

    @property
    def segmentation(self) -> Segmentation | None:
        """The segmentation the current picture was made from."""
        with self._lock:
            return self._segmentation

    @property
    def segmenter(self) -> Segmenter | None:
        """The model selected now, if it is loaded."""
        with self._lock:
            return self._segmenters.get(str(self.controls["model"].value))

    @property
    def segmenters(self) -> dict[str, Segmenter | None]:
        """Model menu entries: name -> loaded Segmenter (None until first used)."""
        with self._lock:
            return dict(self._segmenters)

    @property
    def render_count(self) -> int:
        """How many pictures have been made (one per finished update)."""
        with self._lock:
            return self._render_count

    @property
    def segment_count(self) -> int:
        """How many times the model has run."""
        with self._lock:
            return self._segment_count

    @property
    def busy(self) -> bool:
        """True while an update is being made or waiting."""
        with self._lock:
            return self._busy or self._pending is not None

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until every requested update has been drawn; False if ``timeout`` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy and self._pending is None, timeout)

    def set(self, **changes: Any) -> "StillExplorer":
        """Move controls programmatically, as a person would (the same widgets change, the same
        update path runs); several changes in one call make one update.

        Keys: ``model``, ``effect``, ``internal_resolution`` (a name or a scale 0.1..1), ``threshold``,
        ``opacity``, ``mask_blur_amount``, ``background_blur_amount``, ``edge_blur_amount``,
        ``foreground`` / ``background`` (RGBA tuple, "#rrggbb[aa]" or any colour ``parse_color``
        takes), ``flip_horizontal``, ``background_image``. Every value is checked before any control
        moves (TypeError / ValueError). Returns self; call :meth:`wait` to get the picture.
        """
        c = self.controls
        simple = {
            "model": "model", "effect": "effect", "threshold": "threshold", "opacity": "opacity",
            "mask_blur_amount": "mask_blur", "background_blur_amount": "background_blur",
            "edge_blur_amount": "edge_blur", "flip_horizontal": "flip",
        }
        unknown = set(changes) - set(simple) - {"internal_resolution", "foreground", "background", "background_image"}
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        moves: list[tuple[W.Widget, Any]] = []
        background_image = self._background_image
        for key, value in changes.items():
            if key in simple:
                w = c[simple[key]]
                if isinstance(w, W.Dropdown) and value not in w.options:
                    raise ValueError(f"{key} must be one of {list(w.options)}; got {value!r}")
                if isinstance(w, (W.FloatSlider, W.IntSlider)) and not (w.min <= value <= w.max):
                    raise ValueError(f"{key} must be in [{w.min}, {w.max}]; got {value!r}")
                moves.append((w, value))
            elif key == "internal_resolution":
                if isinstance(value, str):
                    resolve_internal_resolution(value)
                    moves.append((c["resolution"], value.lower()))
                else:
                    scale = resolve_internal_resolution(value)
                    if not 0.1 <= scale <= 1.0:
                        raise ValueError(f"internal_resolution scale must be in [0.1, 1.0] here; got {value!r}")
                    moves.append((c["scale"], scale))
            elif key in ("foreground", "background"):
                rgba = parse_color(value, key)
                moves += [(c[key], _hex(rgba)), (c[f"{key}_alpha"], int(rgba[3]))]
            else:  # background_image
                background_image = None if value is None else load_image(value)
        self._batching = True
        try:
            for widget, value in moves:
                widget.value = value
            self._background_image = background_image
        finally:
            self._batching = False
        self._schedule()
        return self

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the current picture as PNG (default: a new file in ``save_dir``); returns the path."""
        out = self.output
        if out is None:
            raise RuntimeError("nothing to save yet")
        if path is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            effect = self.rendered_settings.effect if self.rendered_settings else "picture"
            path = self._save_dir / f"bgkit_{effect}_{stamp}.png"
        p = save_image(out, Path(path))
        with self._lock:
            self._saved_note = f"saved: <code>{escape(str(p.resolve()))}</code>"
            status = self._last_status
        self._show_status(status)
        return p

    def close(self) -> None:
        """Close the explorer and all its controls (waits briefly for a running update)."""
        self.wait(timeout=10.0)
        for w in [*self.controls.values(), self.preview, self.status, self.save_button]:
            w.close()
        super().close()
