"""``StillExplorer``: one photo, every setting as a live control (ipywidgets), through the pipeline.

::

    from bgkit.widgets import StillExplorer
    explorer = StillExplorer(image)      # or StillExplorer(image, segmenter=seg)
    explorer                             # last expression of a cell: shows it

Pictures are made by a :class:`bgkit.Pipeline`, so the explorer shows exactly what
``bgkit effect``, the figures and the live camera make with the same settings. Changing the
model or a segmentation setting (internal resolution, threshold, edge refinement, edge softness)
segments the photo again; every other control only re-composites the last segmentation
(:meth:`bgkit.Pipeline.render`).

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
import logging
import os
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

from ..core.segmentation import Segmentation
from ..pipeline.settings import SCHEMA, EffectSettings
from ..io.images import ImageLike, load_image, save_image
from ..models.registry import available_models
from ..models.segmenter import Segmenter, load_segmenter
from ..pipeline import Pipeline
from .controls import SettingsControls, image_from_upload

log = logging.getLogger(__name__)

__all__ = ["StillExplorer", "default_out_dir", "encode_png", "image_from_upload", "pick_image"]

#: Longest side of the preview picture (the saved picture and ``output`` keep full size).
PREVIEW_MAX_SIDE = 720
_PREVIEW_PX = 460  # width of the preview on the page (the controls take 400 px beside it)
#: The settings the explorer shows, in order.
CONTROLS = (
    "internal_resolution", "segmentation_threshold", "refine_edges", "edge_softness",
    "effect", "opacity", "mask_blur_amount", "background_blur_amount", "edge_blur_amount",
    "foreground", "background", "background_image", "flip_horizontal",
)
#: Settings whose change needs a new segmentation (the rest only re-composite).
SEGMENTATION_FIELDS = tuple(name for name, knob in SCHEMA.items() if knob.group == "segmentation")


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


def pick_image(upload: Any = None, path: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """The photo to work on, and where it came from: the uploaded file if there is one, else
    ``path`` if given, else bgkit's bundled sample photo."""
    value = getattr(upload, "value", None) if upload is not None else None
    img = image_from_upload(value) if value else None
    if img is not None:
        item = list(value.values())[-1] if isinstance(value, Mapping) else list(value)[-1]
        return img, f"uploaded file {item.get('name', 'upload')!r}"
    if path:
        return load_image(path), str(path)
    from ..io.sample import SAMPLE_CREDIT, sample_image_path

    return load_image(sample_image_path()), f"bundled sample photo ({SAMPLE_CREDIT})"


def _segmentation_key(model: str, s: EffectSettings) -> tuple:
    return (model, *(getattr(s, name) for name in SEGMENTATION_FIELDS))


class StillExplorer(W.VBox):
    """Explore every setting on one photo.

    Args:
        image: the photo (anything :func:`bgkit.load_image` takes); None = the bundled sample.
        segmenter: a loaded :class:`~bgkit.Segmenter` to start with (None: the first model in
            ``models``, loaded on first use).
        models: the names in the model menu: a sequence of registry names, or a mapping
            ``{label: Segmenter or None}`` (None = ``load_segmenter(label)`` on first use).
            Default: :func:`bgkit.available_models` (plus ``segmenter``'s name). Each model is
            loaded at most once and kept in this explorer (no global cache).
        settings: the starting :class:`~bgkit.EffectSettings` (default ``EffectSettings()``).
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
            from ..io.sample import sample_image

            image = sample_image()
        self._image = load_image(image)
        if settings is not None and not isinstance(settings, EffectSettings):
            raise TypeError(f"settings must be an EffectSettings; got {type(settings).__name__}")
        if segmenter is not None and not isinstance(segmenter, Segmenter):
            raise TypeError(f"segmenter must be a bgkit Segmenter; got {type(segmenter).__name__}")
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
        self._requested = settings if settings is not None else EffectSettings()
        self._model = first
        self._pipeline: Pipeline | None = None
        self._pending: tuple[str, EffectSettings] | None = None
        self._busy = False
        self._seg_key: tuple | None = None
        self._segmentation: Segmentation | None = None
        self._output: np.ndarray | None = None
        self._rendered: EffectSettings | None = None
        self._render_count = 0
        self._segment_count = 0
        self._last_status = ""
        self._saved_note = ""
        self.last_error: BaseException | None = None

        # --- controls ---------------------------------------------------------------------------
        style = {"description_width": "9em"}
        self.model_menu = W.Dropdown(options=list(self._segmenters), value=first, description="model", style=style,
                                     layout=W.Layout(width="24em"))
        self.model_menu.add_class("bgkit-model")
        self.model_menu.observe(lambda c: self.set(model=c["new"]), names="value")
        self.settings_controls = SettingsControls(
            get=lambda: self._requested, apply=self._apply, names=CONTROLS, resolve=self._resolve,
            notice=self._notice, default_image=self._backdrop)
        self.controls: dict[str, W.Widget] = {"model": self.model_menu, **self.settings_controls.widgets}
        self.preview = W.Image(format="png", layout=W.Layout(width="auto", max_width=f"{_PREVIEW_PX}px", height="auto"))
        self.preview.add_class("bgkit-preview")
        self.status = W.HTML(value="", layout=W.Layout(width=f"{_PREVIEW_PX}px"))
        self.status.add_class("bgkit-status")
        self.save_button = W.Button(description="Save PNG", icon="download", tooltip=f"save into {self._save_dir}")
        self.save_button.add_class("bgkit-save")
        self.save_button.on_click(lambda _b: self.save())

        c = self.controls
        seg_names = [n for n in CONTROLS if SCHEMA[n].group == "segmentation"]
        left = W.VBox(
            [W.HTML("<b>Segmentation</b> (runs the model again)"), c["model"], *(c[n] for n in seg_names),
             W.HTML("<b>Effect</b> (re-composites only)"), *(c[n] for n in CONTROLS if n not in seg_names)],
            layout=W.Layout(width="445px"),
        )
        right = W.VBox([self.preview, self.status, self.save_button], layout=W.Layout(width=f"{_PREVIEW_PX + 8}px"))
        self.children = [W.HBox([left, right], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))]
        self.add_class("bgkit-still")

        # The first picture is made right here, so the explorer shows it as soon as it displays.
        self._run((self._model, self._requested))

    # ------------------------------------------------------------------------------------------
    # controls -> requests

    def _backdrop(self) -> np.ndarray:
        from ..io.sample import sample_backdrop

        return sample_backdrop(*self._image.shape[:2])

    def _resolve(self, name: str) -> Any:
        if name == "segmentation_threshold":
            seg = self._segmenters.get(self._model)
            return seg.default_threshold if seg is not None else 0.5
        return None

    def _notice(self, message: str) -> None:
        if message:
            self._show_status(f"<span style='color:#b00'>{escape(message)}</span>")

    def _apply(self, **changes: Any) -> None:
        new = self._requested.updated(**changes)
        with self._lock:
            self._requested = new
        self._schedule()

    def _schedule(self) -> None:
        with self._lock:
            self._pending = (self._model, self._requested)  # replaces any older request not started yet
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._work, name="bgkit-still-explorer", daemon=True).start()

    # ------------------------------------------------------------------------------------------
    # the worker: newest pending request only

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
        segmenter = self._segmenter(name)
        if self._pipeline is None:
            self._pipeline = Pipeline(segmenter, s)
        pipe = self._pipeline
        pipe.segmenter, pipe.settings = segmenter, s
        key = _segmentation_key(name, s)
        with self._lock:
            segmentation = self._segmentation if self._seg_key == key else None
        reused = segmentation is not None
        if segmentation is None:
            segmentation = pipe.segment(self._image)
            with self._lock:
                self._segmentation, self._seg_key = segmentation, key
                self._segment_count += 1
        t0 = time.perf_counter()
        out = pipe.render(self._image, segmentation, s)
        render_ms = (time.perf_counter() - t0) * 1000.0
        png = encode_png(out, self._preview_max_side)
        in_h, in_w = segmentation.model_input_size
        status = (
            f"<b>{escape(name)}</b> on {escape(str(segmenter.device))} &middot; "
            f"segmentation <b>{segmentation.elapsed_ms:.0f} ms</b>{' (reused)' if reused else ''} &middot; "
            f"model input <b>{in_w}x{in_h}</b> px &middot; threshold {segmentation.threshold:g} "
            f"&middot; {escape(s.effect)} drawn in {render_ms:.0f} ms"
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
    def model(self) -> str:
        """The model chosen in the menu."""
        return self._model

    @property
    def settings(self) -> EffectSettings:
        """The settings the controls show now (the picture follows once :meth:`wait` returns)."""
        with self._lock:
            return self._requested

    @property
    def pipeline(self) -> Pipeline | None:
        """The pipeline that made the current picture."""
        return self._pipeline

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
            return self._segmenters.get(self._model)

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
        """How many times the photo has been segmented."""
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

    def set(self, model: str | None = None, **changes: Any) -> "StillExplorer":
        """Change the model and/or settings as a person would with the controls (the controls move,
        one update is made for all the changes). Every value is checked first (TypeError /
        ValueError naming the setting), then applied. Returns self; call :meth:`wait` for the picture.
        """
        if model is not None and model not in self._segmenters:
            raise ValueError(f"model must be one of {list(self._segmenters)}; got {model!r}")
        new = self._requested.updated(**changes) if changes else self._requested
        with self._lock:
            self._requested = new
            if model is not None:
                self._model = model
        self.settings_controls.refresh()
        if model is not None and self.model_menu.value != model:
            self.model_menu.value = model  # its observer calls set(model=...) again: a no-op change
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
        self.settings_controls.close()
        for w in (self.model_menu, self.preview, self.status, self.save_button):
            w.close()
        super().close()
