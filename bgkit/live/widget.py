"""``LiveBackground``: the webcam, with its background removed, blurred or replaced, live in Jupyter.

The page (``widget.js``) grabs camera frames and sends them to the kernel as binary messages; the
kernel runs them through a :class:`bgkit.Pipeline` stream (:class:`bgkit.live.processor.LiveProcessor`,
protocol in :mod:`bgkit.live.protocol`). For the BodyPix demo's four effects it answers with the
person's matte and the page composites the effect over the frame it kept (:mod:`bgkit.live.matte`:
the frame travels at the size the model works at, one byte per pixel comes back); for the others
it sends the picture it drew. The controls beside the picture are made from the settings schema
and bound to the widget's settings; everything applies while the camera runs::

    import bgkit
    from bgkit.widgets import LiveBackground

    live = LiveBackground(bgkit.load_segmenter("selfie"))
    live                      # shows the picture and the controls; allow the camera
    live.effect = "bokeh"     # any setting of bgkit.EffectSettings, or use the controls
    live.stats                # frames, fps, round-trip latency, time per stage ...
    live.snapshot("me.png")   # the last processed frame
    live.running = False      # stops the loop and releases the camera

Creating a ``LiveBackground`` calls :func:`bgkit.tune_process` for its kernel (malloc keeps
freed memory, so frames do not page-fault; see :mod:`bgkit.tuning`): the live loop runs frame
after frame in that process.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as W
import numpy as np
import traitlets as T

from ..pipeline.settings import PART_EFFECTS, SCHEMA, EffectSettings, effects_for
from ..models.registry import available_models, list_models
from ..models.segmenter import Segmenter, load_segmenter
from ..pipeline import Pipeline
from ..tuning import tune_process
from ..widgets.controls import SettingsControls
from .jupyter_compat import compat_report, pin_comm_routing, quiet_frame_status, unquiet
from .processor import LiveProcessor
from .protocol import SimulatedClient

__all__ = ["LiveBackground", "default_background_image"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
#: The settings shown as controls, in order.
CONTROLS = (
    "effect", "internal_resolution", "segmentation_threshold", "opacity", "mask_blur_amount", "background_blur_amount",
    "edge_blur_amount", "edge_softness", "foreground", "background", "background_image", "flip_horizontal",
    "refine_edges", "temporal_smoothing", "temporal_ema", "hysteresis",
)


@functools.lru_cache(maxsize=4)
def _backdrop(width: int, height: int) -> np.ndarray:
    from ..io.sample import sample_backdrop

    out = sample_backdrop(height, width)
    out.setflags(write=False)
    return out


def default_background_image(width: int = 640, height: int = 480) -> np.ndarray:
    """The replacement picture used until you give one: bgkit's made-up evening-sky backdrop."""
    return _backdrop(int(width), int(height))


class _SettingProxy:
    """``live.<setting>`` reads and writes one field of ``live.settings`` (validated)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__doc__ = SCHEMA[name].help

    def __get__(self, obj: Any, owner: type) -> Any:
        return self if obj is None else getattr(obj.settings, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.update(**{self.name: value})


class LiveBackground(anywidget.AnyWidget):
    """The webcam with the BodyPix demo's effects, processed by the kernel as it comes.

    Args:
        segmenter: a :class:`bgkit.Segmenter`, a model name for :func:`bgkit.load_segmenter`, or a
            :class:`bgkit.Pipeline` (its segmenter and settings are used).
        source: an ipywebrtc ``CameraStream`` (or any ipywebrtc ``MediaStream``) to take frames
            from. None: ``CameraStream.facing_user(audio=False)`` when ipywebrtc is installed,
            else the page asks the browser for the camera itself (``getUserMedia``).
        settings: the :class:`bgkit.EffectSettings` to start with. Default: the BodyPix demo's
            ("mask" effect, mirrored view), everything else as ``EffectSettings()``.
        autostart: start the camera as soon as the widget is shown.
        show_controls: show the controls beside the picture when the widget is displayed (they
            are always available as ``widget.controls``).
        transport: how frames travel: "auto" (default: raw pixels for the small frames of the matte
            path, up to 100,000 pixels, JPEG for larger ones, e.g. a matting model's full-size
            frames), "jpeg" or "rgba".
        compositing: "auto" (default: the page draws the demo's four effects from the matte, the
            kernel the others), "page" (the same) or "kernel" (the kernel always draws and sends
            the picture; slower, for comparison).
        max_in_flight: frames on their way to the kernel at once (1 = the freshest picture).
        timeout_ms: a frame not answered within this time is given up (the loop goes on).
        frame_width: frames wider than this are scaled down in the page before they are sent.
        torch_threads: threads torch uses for the live frames, see :class:`bgkit.live.processor.LiveProcessor`
            ("auto": half the CPUs, leaving the rest to the browser and the Jupyter server).

    Every field of :class:`bgkit.EffectSettings` is also an attribute (``live.effect``,
    ``live.segmentation_threshold``, ``live.background_image`` ...) and applies from the next
    frame; ``settings`` is all of them at once; ``model`` switches the model by name;
    ``running`` starts and stops the camera.
    """

    _esm = _HERE / "widget.js"
    _css = _HERE / "widget.css"

    # -- synced with the page ------------------------------------------------------------------
    running = T.Bool(False).tag(sync=True)
    source = T.Instance(W.DOMWidget, allow_none=True).tag(sync=True, **W.widget_serialization)
    constraints = T.Dict(
        {"audio": False, "video": {"facingMode": "user", "width": {"ideal": 640}, "height": {"ideal": 480}}}
    ).tag(sync=True)
    transport = T.Enum(("auto", "jpeg", "rgba"), "auto").tag(sync=True)
    compositing = T.Enum(("auto", "page", "kernel"), "auto").tag(sync=True)
    jpeg_quality = T.Int(80, min=10, max=100).tag(sync=True)
    max_in_flight = T.Int(1, min=1, max=8).tag(sync=True)
    timeout_ms = T.Int(1000, min=100, max=60000).tag(sync=True)
    frame_width = T.Int(640, min=16, max=4096).tag(sync=True)
    #: Set by the page: "not shown", "starting", "running", "stopped", "denied", "no-camera",
    #: "busy", "unavailable", "error" or "disconnected".
    camera_state = T.Unicode("not shown").tag(sync=True)
    #: Set by the page: the message it shows about the camera ("" when all is well).
    camera_message = T.Unicode("").tag(sync=True)
    #: Set by the page: what the frontend offers (comms over subshells ...), see jupyter_compat.
    frontend = T.Dict({}).tag(sync=True)
    #: Identifies this widget to its views in the page (several views of one widget share a camera).
    _view_key = T.Unicode().tag(sync=True)
    #: This widget's own model id, so the page can find its comm (see the compat section of widget.js).
    _model_ref = T.Unicode().tag(sync=True)
    #: Set by the kernel: what the kernel offers (see jupyter_compat.compat_report).
    _kernel_compat = T.Dict({}).tag(sync=True)
    #: Set by the kernel: a notice the page shows under the picture (e.g. a model failed to load).
    notice = T.Unicode("").tag(sync=True)

    # -- kernel side -----------------------------------------------------------------------------
    model = T.Unicode()
    settings = T.Instance(EffectSettings)

    def __init__(
        self,
        segmenter: Segmenter | Pipeline | str = "auto",
        source: Any = None,
        settings: EffectSettings | None = None,
        *,
        autostart: bool = True,
        show_controls: bool = True,
        transport: str = "auto",
        compositing: str = "auto",
        max_in_flight: int = 1,
        timeout_ms: int = 1000,
        frame_width: int = 640,
        torch_threads: int | str | None = "auto",
        **kwargs: Any,
    ) -> None:
        tune_process()
        if isinstance(segmenter, Pipeline):
            settings = settings if settings is not None else segmenter.settings
            segmenter = segmenter.segmenter
        if isinstance(segmenter, str):
            segmenter = load_segmenter(segmenter)
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"segmenter must be a bgkit.Segmenter, a Pipeline or a model name; got {type(segmenter).__name__}")
        self._owns_source = False
        if source is None:
            source = self._default_source()
            self._owns_source = source is not None
        if settings is None:
            settings = EffectSettings(flip_horizontal=True)
        elif not isinstance(settings, EffectSettings):
            raise TypeError(f"settings must be an EffectSettings; got {type(settings).__name__}")
        self._segmenters: dict[str, Segmenter] = {segmenter.name: segmenter}
        self._processor = LiveProcessor(segmenter, settings, torch_threads=torch_threads, compositing=compositing)
        self._send_failed = False
        self._snapshot_wait: dict[str, Any] = {}
        super().__init__(
            _view_key=uuid.uuid4().hex, source=source, transport=transport, compositing=compositing,
            max_in_flight=max_in_flight,
            timeout_ms=timeout_ms, frame_width=frame_width, settings=settings, model=segmenter.name, **kwargs,
        )
        self._model_ref = self.model_id
        self.show_controls = show_controls
        self.observe(self._on_settings, names=["settings"])
        self.observe(self._on_model, names=["model"])
        self.observe(lambda c: setattr(self._processor, "compositing", c["new"]), names=["compositing"])
        # a restarted camera is a new stream: forget the smoothing history
        self.observe(lambda c: self._processor.reset_stream() if c["new"] else None, names=["running"])
        self.controls = self._build_controls()
        self.ui = W.HBox([self, self.controls], layout=W.Layout(align_items="flex-start", flex_flow="row wrap"))
        self.on_msg(self._on_msg)
        pin_comm_routing(self)
        quiet_frame_status(self)
        self._kernel_compat = {k: (list(v) if isinstance(v, tuple) else v) for k, v in compat_report(self).items()}
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
        """The kernel-side :class:`bgkit.live.processor.LiveProcessor` (protocol, processing, stats)."""
        return self._processor

    @property
    def pipeline(self) -> Pipeline:
        """The :class:`bgkit.Pipeline` the frames are drawn with."""
        return self._processor.pipeline

    @property
    def segmenter(self) -> Segmenter:
        return self._processor.segmenter

    def update(self, **changes: Any) -> EffectSettings:
        """Change some settings (validated, TypeError/ValueError naming the bad one); they apply
        from the next frame. Returns the new settings."""
        self.settings = self.settings.updated(**changes)
        return self.settings

    @T.validate("settings")
    def _validate_settings(self, proposal: dict) -> EffectSettings:
        value = proposal["value"]
        if not isinstance(value, EffectSettings):
            raise T.TraitError(f"settings must be a bgkit.EffectSettings; got {type(value).__name__}")
        processor = getattr(self, "_processor", None)
        if value.effect in PART_EFFECTS and processor is not None and not processor.segmenter.has_parts:
            raise T.TraitError(f"the {value.effect!r} effect needs the body parts, which model "
                               f"{processor.segmenter.name!r} does not give; choose a model with a body-part "
                               "head (bodypix, bodypix_050, ...) first")
        return value

    def _on_settings(self, change: dict) -> None:
        self._processor.settings = change["new"]
        controls = getattr(self, "_controls", None)
        if controls is not None:
            controls.refresh()

    @T.validate("model")
    def _validate_model(self, proposal: dict) -> str:
        name = proposal["value"]
        known = list_models()
        if name not in known and name not in getattr(self, "_segmenters", {}):
            raise T.TraitError(f"unknown model {name!r}; known models: {', '.join(known)}")
        return name

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
        if getattr(self, "_controls", None) is not None:
            self._controls.set_choices("effect", effects_for(seg))  # body-part effects: BodyPix only
            self._controls.refresh()  # the threshold slider shows the new model's default

    # -- controls --------------------------------------------------------------------------------

    def _build_controls(self) -> W.Widget:
        style = {"description_width": "9em"}

        def notice(message: str) -> None:
            self.notice = message

        self._controls = SettingsControls(
            get=lambda: self.settings, apply=self.update, names=CONTROLS,
            resolve=lambda name: self.segmenter.default_threshold if name == "segmentation_threshold" else None,
            notice=notice, default_image=default_background_image,
        )
        if "effect" in self._controls.widgets:
            self._controls.set_choices("effect", effects_for(self.segmenter))
        models = sorted(set(available_models()) | {self.model})
        model = W.Dropdown(options=models, value=self.model, description="model", style=style,
                           layout=W.Layout(width="24em"))
        model.add_class("bgkit-model")

        def model_chosen(change: dict) -> None:
            try:
                self.model = change["new"]
            except T.TraitError as exc:
                self.notice = str(exc)

        model.observe(model_chosen, names="value")
        self.observe(lambda c: setattr(model, "value", c["new"]) if c["new"] in model.options else None, names="model")
        start = W.ToggleButton(description="Stop" if self.running else "Start", icon="video-camera",
                               layout=W.Layout(width="10em"))
        W.link((self, "running"), (start, "value"))
        self.observe(lambda c: setattr(start, "description", "Stop" if c["new"] else "Start"), names="running")
        c = self._controls.widgets
        return W.VBox([W.HBox([start, c["flip_horizontal"]]), model,
                       *(c[n] for n in CONTROLS if n != "flip_horizontal")], layout=W.Layout(min_width="24em"))

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
        if isinstance(content, dict) and content.get("type") == "snapshot":
            waiter = self._snapshot_wait.get(str(content.get("id")))
            if waiter is not None and buffers:
                waiter["png"] = bytes(buffers[0])
                waiter["event"].set()
            return
        self._answer(content, buffers)

    def simulated_client(self, fmt: str | None = None, mode: str = "matte") -> SimulatedClient:
        """A stand-in for the page: ``client.roundtrip(frame)`` sends ``frame`` through the same
        protocol and processing as camera frames and draws the reply as the page would (for
        notebooks run without a browser). ``mode``: "matte" (the page composites, as widget.js
        does for the demo's four effects) or "picture" (the kernel draws)."""

        def send(content: dict, buffers: list) -> tuple[dict, list]:
            content = dict(content, simulated=True)
            reply, reply_buffers = self._processor.handle_message(content, buffers)
            if reply.get("type") == "result":
                try:
                    self.send(dict(reply, simulated=True), reply_buffers)
                except Exception:  # noqa: BLE001 - no page attached
                    pass
            return reply, reply_buffers

        fmt = fmt or ("rgba" if mode == "matte" else "jpeg")  # as the page sends them
        return SimulatedClient(send, fmt=fmt, mode=mode)

    @property
    def stats(self) -> dict:
        """Kernel-side statistics of the live loop (see :attr:`bgkit.live.processor.LiveProcessor.stats`),
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
        """The last processed picture the kernel has (RGB, or RGBA for "cutout"), or None before
        the first frame. Where the page composites, this is the kernel's drawing of the frame it
        got, at the size the model works at; :meth:`snapshot` asks the page for what it shows."""
        return self._processor.last_output

    def _page_picture(self, timeout_s: float = 3.0) -> np.ndarray | None:
        """The picture the page shows (asked for over the widget's comm), or None if no answer comes.
        The answer arrives on the comm's own thread, so this works while the camera runs in a
        frontend with comms over subshells; elsewhere it times out."""
        import io
        import threading

        from PIL import Image

        if not self.running or self.camera_state != "running" or not self.frontend.get("subshells"):
            return None
        key = uuid.uuid4().hex
        waiter = self._snapshot_wait[key] = {"event": threading.Event(), "png": None}
        try:
            self.send({"type": "snapshot", "id": key})
            if not waiter["event"].wait(timeout_s) or not waiter["png"]:
                return None
            with Image.open(io.BytesIO(waiter["png"])) as im:
                picture = np.array(im.convert("RGBA"))
        except Exception:  # noqa: BLE001 - no page, or a bad answer: the kernel's own picture will do
            return None
        finally:
            self._snapshot_wait.pop(key, None)
        return picture if (picture[:, :, 3] < 255).any() else np.ascontiguousarray(picture[:, :, :3])

    def snapshot(self, path: str | os.PathLike | None = None) -> Any:
        """Save the picture shown to ``path`` (PNG/JPEG/... from the suffix) and return the path;
        without a path, return it as an array. The page's own picture while the camera runs (in
        a frontend with comms over subshells), else the last frame the kernel processed.
        RuntimeError before the first frame."""
        picture = self._page_picture()
        if picture is None:
            return self._processor.snapshot(path)
        if path is None:
            return picture
        from ..io.images import save_image

        return save_image(picture, path)

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
        unquiet(self)
        super().close()


for _name in SCHEMA:
    setattr(LiveBackground, _name, _SettingProxy(_name))


def _walk(widget: W.Widget) -> list[W.Widget]:
    out = [widget]
    for child in getattr(widget, "children", ()):
        out.extend(_walk(child))
    return out

