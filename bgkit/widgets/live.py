"""``LiveBackground``: the webcam, with its background removed, blurred or replaced, live in JupyterLab.

The page (``live.js``) grabs camera frames and sends them to the kernel as binary messages; the
kernel runs :class:`bgkit.pipeline.FrameProcessor` on each (see :mod:`bgkit.live` for the protocol)
and sends the picture back, which the page draws. The controls beside the picture are ordinary
ipywidgets bound to the widget's settings; everything applies while the camera runs::

    import bgkit
    from bgkit.widgets import LiveBackground

    live = LiveBackground(bgkit.load_segmenter("selfie"))
    live                      # shows the picture and the controls; allow the camera
    live.effect = "bokeh"     # or use the controls
    live.stats                # frames, fps, round-trip latency, model ms ...
    live.snapshot("me.png")   # the last processed frame
    live.running = False      # stops the loop and releases the camera
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as W
import numpy as np
import traitlets as T

from .. import load_segmenter
from ..imageio import load_image
from ..live import LiveProcessor, SimulatedClient
from ..models.registry import available_models, list_models
from ..pipeline import EFFECTS, EffectSettings
from ..segmentation import INTERNAL_RESOLUTIONS
from ..segmenter import Segmenter

__all__ = ["LiveBackground", "default_background_image"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
#: Label of the "use the model's own default" choice of internal resolution.
MODEL_DEFAULT = "model default"


def _hex(rgba: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgba[:3]))


def _rgba(hex_colour: str, alpha: int) -> tuple[int, int, int, int]:
    s = hex_colour.strip().lstrip("#")
    if len(s) == 3:
        s = "".join(c * 2 for c in s)
    if len(s) != 6:
        raise ValueError(f"colour must look like '#rrggbb'; got {hex_colour!r}")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16), int(alpha))


@functools.lru_cache(maxsize=4)
def _backdrop(width: int, height: int) -> np.ndarray:
    from ..sample import sample_backdrop

    out = sample_backdrop(height, width)
    out.setflags(write=False)
    return out


def default_background_image(width: int = 640, height: int = 480) -> np.ndarray:
    """The replacement picture used until you give one: bgkit's made-up evening-sky backdrop."""
    return _backdrop(int(width), int(height))


class LiveBackground(anywidget.AnyWidget):
    """The webcam with the BodyPix demo's effects, processed by the kernel as it comes.

    Args:
        segmenter: a :class:`bgkit.Segmenter`, or a model name for :func:`bgkit.load_segmenter`.
        source: an ipywebrtc ``CameraStream`` (or any ipywebrtc ``MediaStream``) to take frames
            from. None: ``CameraStream.facing_user(audio=False)`` when ipywebrtc is installed,
            else the page asks the browser for the camera itself (``getUserMedia``).
        settings: the :class:`bgkit.pipeline.EffectSettings` to start with. Default: the
            BodyPix demo's ("mask" effect, internal resolution "medium", mirrored view).
        autostart: start the camera as soon as the widget is shown.
        show_controls: show the controls beside the picture when the widget is displayed (they
            are always available as ``widget.controls``).
        transport: how frames travel: "jpeg" (default; small messages) or "rgba" (raw pixels).
        max_in_flight: frames on their way to the kernel at once (1 = the freshest picture).
        timeout_ms: a frame not answered within this time is given up (the loop goes on).
        frame_width: frames wider than this are scaled down in the page before they are sent.
        torch_threads: threads torch uses for the live frames, see :class:`bgkit.live.LiveProcessor`
            ("auto": half the CPUs, leaving the rest to the browser and the Jupyter server).

    Settings are attributes (``effect``, ``internal_resolution``, ``threshold``, ``opacity``,
    ``mask_blur_amount``, ``background_blur_amount``, ``edge_blur_amount``, ``foreground``,
    ``background``, ``background_image``, ``replace_with``, ``flip_horizontal``, ``model``) and
    apply from the next frame. ``running`` starts and stops the camera.
    """

    _esm = _HERE / "live.js"
    _css = _HERE / "live.css"

    # -- synced with the page ------------------------------------------------------------------
    running = T.Bool(False).tag(sync=True)
    source = T.Instance(W.DOMWidget, allow_none=True).tag(sync=True, **W.widget_serialization)
    constraints = T.Dict(
        {"audio": False, "video": {"facingMode": "user", "width": {"ideal": 640}, "height": {"ideal": 480}}}
    ).tag(sync=True)
    transport = T.Enum(("jpeg", "rgba"), "jpeg").tag(sync=True)
    jpeg_quality = T.Int(80, min=10, max=100).tag(sync=True)
    max_in_flight = T.Int(1, min=1, max=8).tag(sync=True)
    timeout_ms = T.Int(1000, min=100, max=60000).tag(sync=True)
    frame_width = T.Int(640, min=16, max=4096).tag(sync=True)
    #: Set by the page: "not shown", "starting", "running", "stopped", "denied", "no-camera",
    #: "busy", "unavailable", "error" or "disconnected".
    camera_state = T.Unicode("not shown").tag(sync=True)
    #: Set by the page: the message it shows about the camera ("" when all is well).
    camera_message = T.Unicode("").tag(sync=True)
    #: Identifies this widget to its views in the page (several views of one widget share a camera).
    _view_key = T.Unicode().tag(sync=True)
    #: This widget's own model id, so the page can find its comm (see ``commReady`` in live.js).
    _model_ref = T.Unicode().tag(sync=True)
    #: Set by the kernel: a notice the page shows under the picture (e.g. a model failed to load).
    notice = T.Unicode("").tag(sync=True)

    # -- settings (kernel side) ----------------------------------------------------------------
    model = T.Unicode()
    effect = T.Enum(EFFECTS, "mask")
    internal_resolution = T.Union([T.Unicode(), T.Float()], allow_none=True, default_value="medium")
    threshold = T.Float(0.7, min=0.0, max=1.0)
    opacity = T.Float(0.7, min=0.0, max=1.0)
    mask_blur_amount = T.Float(0.0, min=0.0, max=20.0)
    background_blur_amount = T.Float(3.0, min=0.0, max=20.0)
    edge_blur_amount = T.Float(3.0, min=0.0, max=20.0)
    foreground = T.Tuple(T.Int(), T.Int(), T.Int(), T.Int(), default_value=(0, 0, 0, 0))
    background = T.Tuple(T.Int(), T.Int(), T.Int(), T.Int(), default_value=(0, 0, 0, 255))
    replace_with = T.Enum(("colour", "image"), "colour")
    background_image = T.Any(None)
    flip_horizontal = T.Bool(True)
    temporal_smoothing = T.Bool(True)
    temporal_ema = T.Float(0.5, min=0.05, max=1.0)
    hysteresis = T.Float(0.6, min=0.0, max=0.95)
    refine_edges = T.Bool(True)

    _SETTING_NAMES = (
        "effect", "internal_resolution", "threshold", "opacity", "mask_blur_amount", "background_blur_amount",
        "edge_blur_amount", "foreground", "background", "flip_horizontal", "temporal_smoothing", "temporal_ema",
        "hysteresis", "refine_edges",
    )

    def __init__(
        self,
        segmenter: Segmenter | str = "auto",
        source: Any = None,
        settings: EffectSettings | None = None,
        *,
        autostart: bool = True,
        show_controls: bool = True,
        transport: str = "jpeg",
        max_in_flight: int = 1,
        timeout_ms: int = 1000,
        frame_width: int = 640,
        torch_threads: int | str | None = "auto",
        **kwargs: Any,
    ) -> None:
        if isinstance(segmenter, str):
            segmenter = load_segmenter(segmenter)
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"segmenter must be a bgkit.Segmenter or a model name; got {type(segmenter).__name__}")
        self._owns_source = False
        if source is None:
            source = self._default_source()
            self._owns_source = source is not None
        if settings is None:
            settings = EffectSettings(internal_resolution="medium", flip_horizontal=True)
        elif not isinstance(settings, EffectSettings):
            raise TypeError(f"settings must be an EffectSettings; got {type(settings).__name__}")
        self._segmenters: dict[str, Segmenter] = {segmenter.name: segmenter}
        self._processor = LiveProcessor(segmenter, settings, torch_threads=torch_threads)
        self._syncing = threading.local()
        self._send_failed = False
        super().__init__(
            _view_key=uuid.uuid4().hex, source=source, transport=transport, max_in_flight=max_in_flight,
            timeout_ms=timeout_ms, frame_width=frame_width, **kwargs,
        )
        self._model_ref = self.model_id
        self.show_controls = show_controls
        # settings -> traits (no observers yet)
        self.model = segmenter.name
        for name in self._SETTING_NAMES:
            setattr(self, name, getattr(settings, name))
        if settings.background_image is not None:
            self.background_image = settings.background_image
            self.replace_with = "image"
        self.observe(self._on_setting, names=list(self._SETTING_NAMES) + ["replace_with", "background_image"])
        self.observe(self._on_model, names=["model"])
        # a restarted camera is a new stream: forget the smoothing history
        self.observe(lambda c: self._processor.reset_stream() if c["new"] else None, names=["running"])
        self._push_settings()
        self.controls = self._build_controls()
        self.ui = W.HBox([self, self.controls], layout=W.Layout(align_items="flex-start", flex_flow="row wrap"))
        self.on_msg(self._on_msg)
        _pin_comm_routing(self)
        self.running = bool(autostart)

    # -- construction helpers --------------------------------------------------------------------

    @staticmethod
    def _default_source() -> Any:
        try:
            from ipywebrtc import CameraStream
        except ImportError:
            return None
        return CameraStream.facing_user(audio=False)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if getattr(self, "show_controls", False) and getattr(self, "ui", None) is not None:
            return self.ui._repr_mimebundle_(**kwargs)
        return super()._repr_mimebundle_(**kwargs)

    # -- settings --------------------------------------------------------------------------------

    @property
    def processor(self) -> LiveProcessor:
        """The kernel-side :class:`bgkit.live.LiveProcessor` (protocol, processing, stats)."""
        return self._processor

    @property
    def segmenter(self) -> Segmenter:
        return self._processor.segmenter

    @property
    def settings(self) -> EffectSettings:
        """The :class:`EffectSettings` frames are processed with now."""
        return self._processor.settings

    @settings.setter
    def settings(self, settings: EffectSettings) -> None:
        if not isinstance(settings, EffectSettings):
            raise TypeError(f"settings must be an EffectSettings; got {type(settings).__name__}")
        with self.hold_trait_notifications():
            for name in self._SETTING_NAMES:
                setattr(self, name, getattr(settings, name))
            if settings.background_image is not None:
                self.background_image = settings.background_image
                self.replace_with = "image"
            else:
                self.replace_with = "colour"
        self._push_settings()

    def _effective_background_image(self) -> Any:
        if self.replace_with != "image":
            return None
        if self.background_image is None:
            return default_background_image()
        return self.background_image

    def _push_settings(self) -> None:
        values = {name: getattr(self, name) for name in self._SETTING_NAMES}
        values["foreground"] = tuple(values["foreground"])
        values["background"] = tuple(values["background"])
        values["background_image"] = self._effective_background_image()
        self._processor.update(**values)

    def _on_setting(self, change: dict) -> None:
        try:
            self._push_settings()
        except Exception as exc:  # noqa: BLE001 - show it; keep the old settings
            self.notice = f"{change['name']} = {change['new']!r} not applied: {exc}"
            return
        if self.notice.startswith(change["name"] + " "):
            self.notice = ""

    @T.validate("background_image")
    def _validate_background_image(self, proposal: dict) -> Any:
        value = proposal["value"]
        return None if value is None else load_image(value)

    @T.validate("model")
    def _validate_model(self, proposal: dict) -> str:
        name = proposal["value"]
        known = list_models()
        if name not in known and name not in getattr(self, "_segmenters", {}):
            raise T.TraitError(f"unknown model {name!r}; known models: {', '.join(known)}")
        return name

    @T.validate("internal_resolution")
    def _validate_internal_resolution(self, proposal: dict) -> Any:
        value = proposal["value"]
        if value == MODEL_DEFAULT:
            return None
        if value is not None:
            from ..segmentation import resolve_internal_resolution

            resolve_internal_resolution(value)  # raises a clear error
        return value

    def use_segmenter(self, segmenter: Segmenter) -> None:
        """Switch to an already loaded segmenter (e.g. one with weights of your own); it joins the
        model choices under its name."""
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"segmenter must be a bgkit.Segmenter; got {type(segmenter).__name__}")
        self._segmenters[segmenter.name] = segmenter
        if self.model == segmenter.name:
            self._processor.segmenter = segmenter
            self._processor.reset_stats()
        else:
            self.model = segmenter.name

    def _on_model(self, change: dict) -> None:
        name = change["new"]
        if self._segmenters.get(name) is self._processor.segmenter:
            return
        try:
            seg = self._segmenters.get(name)
            if seg is None:
                self.notice = f"loading model {name!r} ..."
                seg = load_segmenter(name, device=self._processor.segmenter.device)
                self._segmenters[name] = seg
        except Exception as exc:  # noqa: BLE001 - show it, keep the old model
            self.notice = f"model {name!r} could not be loaded: {exc}"
            with self.hold_trait_notifications():
                self.set_trait("model", change["old"])
            return
        self._processor.segmenter = seg
        self._processor.reset_stats()
        self.notice = ""

    # -- controls --------------------------------------------------------------------------------

    def _bind(self, control: W.Widget, trait: str, to_control=lambda v: v, from_control=lambda v: v) -> W.Widget:
        """Two-way binding between ``control.value`` and ``self.<trait>`` (with conversions)."""

        def control_changed(change: dict) -> None:
            if getattr(self._syncing, "on", False):
                return
            try:
                self._syncing.on = True
                setattr(self, trait, from_control(change["new"]))
            except Exception as exc:  # noqa: BLE001
                self.notice = f"{trait}: {exc}"
            finally:
                self._syncing.on = False

        def trait_changed(change: dict) -> None:
            if getattr(self._syncing, "on", False):
                return
            try:
                self._syncing.on = True
                # the current value, not change["new"]: an observer may have reverted it since
                value = to_control(getattr(self, trait))
                if isinstance(control, (W.Dropdown, W.ToggleButtons)):
                    options = [o if isinstance(o, tuple) else (str(o), o) for o in control.options]
                    if value not in [v for _, v in options]:
                        control.options = options + [(str(value), value)]
                control.value = value
            finally:
                self._syncing.on = False

        control.observe(control_changed, names="value")
        self.observe(trait_changed, names=trait)
        trait_changed({"new": getattr(self, trait)})
        return control

    def _build_controls(self) -> W.Widget:
        style = {"description_width": "9em"}
        wide = W.Layout(width="22em")
        models = sorted(set(available_models()) | {self.model})
        model = self._bind(W.Dropdown(options=models, description="model", style=style, layout=wide), "model")
        res_options = [(MODEL_DEFAULT, MODEL_DEFAULT)] + [
            (f"{k} ({v:g})", k) for k, v in INTERNAL_RESOLUTIONS.items()
        ]
        internal_res = self._bind(
            W.Dropdown(options=res_options, description="internal resolution", style=style, layout=wide),
            "internal_resolution",
            to_control=lambda v: MODEL_DEFAULT if v is None else v,
            from_control=lambda v: None if v == MODEL_DEFAULT else v,
        )

        def slider(trait: str, lo: float, hi: float, step: float, label: str | None = None) -> W.Widget:
            return self._bind(
                W.FloatSlider(min=lo, max=hi, step=step, description=label or trait.replace("_", " "),
                              style=style, layout=wide, continuous_update=True,
                              readout_format=".2f" if hi <= 1 else ".1f"),
                trait,
            )

        effect = self._bind(W.Dropdown(options=list(EFFECTS), description="effect", style=style, layout=wide), "effect")
        threshold = slider("threshold", 0.0, 1.0, 0.01, "threshold")
        opacity = slider("opacity", 0.0, 1.0, 0.01, "mask opacity")
        mask_blur = slider("mask_blur_amount", 0.0, 20.0, 0.5, "mask blur")
        bg_blur = slider("background_blur_amount", 0.0, 20.0, 0.5, "background blur")
        edge_blur = slider("edge_blur_amount", 0.0, 20.0, 0.5, "edge blur")
        smoothing = self._bind(W.Checkbox(description="temporal smoothing", indent=False), "temporal_smoothing")
        ema = slider("temporal_ema", 0.05, 1.0, 0.05, "new-frame weight")
        hysteresis = slider("hysteresis", 0.0, 0.95, 0.05, "hysteresis")
        refine = self._bind(W.Checkbox(description="refine edges", indent=False), "refine_edges")

        def colour(trait: str, label: str) -> W.Widget:
            picker = W.ColorPicker(concise=True, description=label, style=style, layout=W.Layout(width="13em"))
            alpha = W.IntSlider(min=0, max=255, description="alpha", style={"description_width": "3em"},
                                layout=W.Layout(width="12em"))
            self._bind(picker, trait, to_control=_hex, from_control=lambda v: _rgba(v, alpha.value))
            self._bind(alpha, trait, to_control=lambda v: int(v[3]), from_control=lambda a: _rgba(picker.value, a))
            return W.HBox([picker, alpha])

        fg = colour("foreground", "mask person")
        bg = colour("background", "mask/bg colour")
        replace_with = self._bind(
            W.ToggleButtons(options=[("colour", "colour"), ("image", "image")], description="replace with",
                            style={"description_width": "9em", "button_width": "6em"}),
            "replace_with",
        )
        upload = W.FileUpload(accept="image/*", multiple=False, description="background image",
                              layout=W.Layout(width="14em"))

        def uploaded(change: dict) -> None:
            files = change["new"]
            if not files:
                return
            try:
                import io

                from PIL import Image

                item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
                with Image.open(io.BytesIO(bytes(item["content"]))) as im:
                    self.background_image = np.array(im.convert("RGB"))
                self.replace_with = "image"
                self.effect = "replace"
            except Exception as exc:  # noqa: BLE001
                self.notice = f"background image not usable: {exc}"

        upload.observe(uploaded, names="value")
        flip = self._bind(W.Checkbox(description="mirror (flip horizontal)", indent=False), "flip_horizontal")
        start = W.ToggleButton(description="Start / Stop", icon="video-camera", layout=W.Layout(width="10em"))
        W.link((self, "running"), (start, "value"))
        start.description = "Stop" if self.running else "Start"
        self.observe(lambda c: setattr(start, "description", "Stop" if c["new"] else "Start"), names="running")
        return W.VBox(
            [W.HBox([start, flip]), model, internal_res, effect, threshold, opacity, mask_blur, bg_blur, edge_blur,
             W.HBox([smoothing, refine]), ema, hysteresis, fg, bg, W.HBox([replace_with]), upload],
            layout=W.Layout(min_width="24em"),
        )

    # -- the loop's kernel side ------------------------------------------------------------------

    def _answer(self, content: Any, buffers: list | None, forward: bool = True) -> tuple[dict, list]:
        reply, reply_buffers = self._processor.handle_message(content, buffers)
        if forward:
            try:
                self.send(reply, reply_buffers)
                self._send_failed = False
            except Exception as exc:  # noqa: BLE001 - the page is gone; say so once
                if not self._send_failed:
                    log.warning("bgkit LiveBackground: could not send a frame to the page (%s)", exc)
                self._send_failed = True
        return reply, reply_buffers

    def _on_msg(self, _widget: Any, content: Any, buffers: list | None) -> None:
        self._answer(content, buffers)

    def simulated_client(self, fmt: str = "jpeg") -> SimulatedClient:
        """A stand-in for the page: ``client.roundtrip(frame)`` sends ``frame`` through the same
        protocol and processing as camera frames (for notebooks run without a browser)."""

        def send(content: dict, buffers: list) -> tuple[dict, list]:
            content = dict(content, simulated=True)
            reply, reply_buffers = self._processor.handle_message(content, buffers)
            if reply.get("type") == "result":
                try:
                    self.send(dict(reply, simulated=True), reply_buffers)
                except Exception:  # noqa: BLE001 - no page attached
                    pass
            return reply, reply_buffers

        return SimulatedClient(send, fmt=fmt)

    @property
    def stats(self) -> dict:
        """Kernel-side statistics of the live loop (see :attr:`bgkit.live.LiveProcessor.stats`),
        plus the camera's state as the page reports it."""
        stats = self._processor.stats
        stats["running"] = self.running
        stats["camera_state"] = self.camera_state
        return stats

    def reset_stats(self) -> None:
        """Start counting frames and timings afresh (e.g. before measuring a setting's fps)."""
        self._processor.reset_stats()

    @property
    def last_frame(self) -> np.ndarray | None:
        """The last processed picture (RGB, or RGBA for "cutout"), or None before the first frame."""
        return self._processor.last_output

    def snapshot(self, path: str | os.PathLike | None = None) -> Any:
        """Save the last processed frame to ``path`` (PNG/JPEG/... from the suffix) and return the
        path; without a path, return the picture as an array. RuntimeError before the first frame."""
        return self._processor.snapshot(path)

    def start(self) -> None:
        """Start the camera (same as ``running = True`` or the Start button)."""
        self.running = True

    def stop(self) -> None:
        """Stop the loop and release the camera (same as ``running = False``)."""
        self.running = False

    def close(self) -> None:
        """Stop, release the camera and close the widget, its controls and its own camera source."""
        try:
            self.running = False
        except Exception:  # noqa: BLE001 - already closed
            pass
        controls = getattr(self, "controls", None)
        if controls is not None:
            for w in _walk(controls):
                w.close()
        if getattr(self, "ui", None) is not None:
            self.ui.close()
        if self._owns_source and self.source is not None:
            self.source.close()
        super().close()


def _pin_comm_routing(widget: W.Widget) -> None:
    """Let the page's frames reach the kernel thread the page addressed them to.

    JupyterLab sends widget messages to a kernel *subshell* (a thread of their own), so frames are
    processed while a cell runs. ipykernel 7 reroutes a comm's incoming messages to whichever
    subshell last *sent* on that comm; after a cell changes a synced trait (e.g. ``running``),
    frames would go to the main thread and wait for the cell to finish. This comm carries no
    request/reply pairs that need that rerouting, so keep the subshell the page chose.
    """
    comm = getattr(widget, "comm", None)
    if comm is not None and callable(getattr(type(comm), "_reply_subshell_for", None)):
        comm._reply_subshell_for = lambda data, default: default


def _walk(widget: W.Widget) -> list[W.Widget]:
    out = [widget]
    for child in getattr(widget, "children", ()):
        out.extend(_walk(child))
    return out
