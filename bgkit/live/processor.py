"""The kernel side of the live loop: frame messages in, pictures out, through one pipeline stream.

:class:`LiveProcessor` is the one live processor: it decodes the page's frame messages
(:mod:`bgkit.live.protocol`), runs them through a :class:`bgkit.Stream` of a
:class:`bgkit.Pipeline` (so temporal smoothing and a recurrent model's state carry from frame to
frame), encodes the picture and keeps the loop's statistics. It is driven by
:class:`bgkit.live.widget.LiveBackground`, by the tests and by ``benchmarks/live_fps.py``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..io.images import ImageLike, save_image
from ..models.segmenter import Segmenter
from ..ops.compositing import cover
from ..pipeline import Pipeline, Result
from ..pipeline.settings import EffectSettings
from . import matte
from .protocol import (PROTOCOL_VERSION, REPLY_FORMATS, FrameRequest, ProtocolError, _as_bytes, decode_frame,
                       encode_image)
from .stats import RateMeter, RollingStats, is_number, rounded

__all__ = ["COMPOSITING", "LiveProcessor", "resolve_torch_threads"]

#: Where the picture is composited: "auto" (in the page where it can, see :mod:`bgkit.live.matte`),
#: "page" (the same; kept for symmetry) or "kernel" (the kernel always draws and sends the picture).
COMPOSITING = ("auto", "page", "kernel")

log = logging.getLogger(__name__)


def resolve_torch_threads(value: int | str | None) -> int | None:
    """``"auto"`` -> half the CPUs this process may use (at least 1); an int >= 1 as is; None."""
    if value is None:
        return None
    if value == "auto":
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 2
        return max(1, cpus // 2)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"torch_threads must be 'auto', None or a whole number >= 1; got {value!r}")
    return value


class LiveProcessor:
    """Turns frame messages into result messages with one :class:`bgkit.Stream` of a pipeline.

    Thread safe: widget messages arrive on a kernel thread of their own (JupyterLab's comms over
    subshells) while notebook code changes settings on the main thread. Settings and the
    segmenter live in the :class:`bgkit.Pipeline` (swapped atomically, read once per frame); the
    stream processes one frame at a time; one lock guards the statistics.

    Args:
        pipeline: the :class:`bgkit.Pipeline` to draw with (or a :class:`bgkit.Segmenter`, drawn
            with ``settings``).
        settings: the :class:`EffectSettings` to start with, when ``pipeline`` is a segmenter.
        reply_format: "auto" (the request's format; "webp" instead of "jpeg" for RGBA output such
            as the "cutout" effect) or one of :data:`REPLY_FORMATS`.
        jpeg_quality: quality (1..100) of JPEG/WebP replies.
        torch_threads: threads torch may use for each frame, set on the thread that processes the
            frames (``torch.set_num_threads`` there; the main thread keeps its own setting, threads
            started later inherit it). "auto": half the CPUs, at least 1, so the browser and the
            Jupyter server keep some for themselves (on a 2-core machine this more than doubles the
            frame rate under load). None: leave torch's setting alone.
        compositing: where the picture is drawn, see :data:`COMPOSITING` ("auto": the page draws
            the four demo effects from the matte, the kernel everything else).
    """

    def __init__(
        self, pipeline: Pipeline | Segmenter, settings: EffectSettings | None = None, reply_format: str = "auto",
        jpeg_quality: int = 80, torch_threads: int | str | None = "auto", compositing: str = "auto",
    ) -> None:
        if reply_format != "auto" and reply_format not in REPLY_FORMATS:
            raise ValueError(f"reply_format must be 'auto' or one of {', '.join(REPLY_FORMATS)}; got {reply_format!r}")
        if compositing not in COMPOSITING:
            raise ValueError(f"compositing must be one of {', '.join(COMPOSITING)}; got {compositing!r}")
        self.compositing = compositing
        self.torch_threads = resolve_torch_threads(torch_threads)
        self.pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline, settings)
        if isinstance(pipeline, Pipeline) and settings is not None:
            self.pipeline.settings = settings
        self.stream = self.pipeline.stream()
        self.reply_format = reply_format
        self.jpeg_quality = int(jpeg_quality)
        self._lock = threading.Lock()  # guards the statistics and the last picture
        self._last_output: np.ndarray | None = None
        self._last_matte: tuple[np.ndarray, np.ndarray, EffectSettings] | None = None  # frame, matte, settings
        self._background_ids: dict[int, tuple[Any, str]] = {}  # id(array) -> (array, content id)
        self._sent_background: tuple[str, int, int] | None = None
        self._errors_logged: set[str] = set()
        self.reset_stats()

    # -- state ---------------------------------------------------------------------------------

    @property
    def segmenter(self) -> Segmenter:
        return self.pipeline.segmenter

    @segmenter.setter
    def segmenter(self, segmenter: Segmenter) -> None:
        self.pipeline.segmenter = segmenter  # the stream starts afresh with another model

    @property
    def settings(self) -> EffectSettings:
        return self.pipeline.settings

    @settings.setter
    def settings(self, settings: EffectSettings) -> None:
        self.pipeline.settings = settings

    def update(self, **changes: Any) -> EffectSettings:
        """Change some settings (validated; applies from the next frame). Returns the new settings."""
        return self.pipeline.update(**changes)

    def reset_stream(self) -> None:
        """Forget the stream's history (camera restarted, scene changed)."""
        self.stream.reset()

    def reset_stats(self) -> None:
        """Forget all counters and timings (e.g. after changing the model, before measuring)."""
        with self._lock:
            self._frames_received = 0
            self._frames_processed = 0
            self._frames_failed = 0
            self._bytes_in = 0
            self._bytes_out = 0
            self._frame_size: tuple[int, int] | None = None
            self._rate = RateMeter()
            self._timings: dict[str, RollingStats] = {}
            self._client: dict = {}
            self._last_error: str | None = None
            self._kind: str | None = None
            self._started = time.perf_counter()

    def _time(self, stage: str, ms: float) -> None:
        stat = self._timings.get(stage)
        if stat is None:
            stat = self._timings[stage] = RollingStats()
        stat.add(ms)

    def _p50(self, stage: str, nd: int = 1) -> float | None:
        stat = self._timings.get(stage)
        return rounded(stat.percentile(50), nd) if stat is not None else None

    @property
    def last_output(self) -> np.ndarray | None:
        """The last processed picture ((H, W, 3) RGB or (H, W, 4) RGBA), or None. Where the page
        composited it, this is :func:`bgkit.live.matte.compose_matte` of the frame the kernel got
        (at the size the model works at), the page's picture at that size."""
        with self._lock:
            if self._last_output is None and self._last_matte is not None:
                frame, m, settings = self._last_matte
                self._last_output = matte.compose_matte(frame, m, settings)
            return self._last_output

    def snapshot(self, path: str | os.PathLike | None = None) -> np.ndarray | Path:
        """The last processed picture; saved to ``path`` (format from its suffix) when given."""
        out = self.last_output
        if out is None:
            raise RuntimeError("no frame has been processed yet: display the widget in JupyterLab and allow the camera")
        if path is None:
            return out.copy()
        return save_image(out, path)

    @property
    def stats(self) -> dict:
        """Counters and timings of the live loop (a fresh dict; see the keys for what is measured).

        ``fps`` is frames processed per second by the kernel over the last two seconds;
        ``fps_shown`` and the ``latency_ms_*`` round-trip times (frame captured in the page ->
        processed picture drawn) are measured by the page and reported with its next frame. The
        ``*_ms_p50`` entries are the median milliseconds of each stage, kernel and page.
        """
        with self._lock:
            client = dict(self._client)
            settings = self.pipeline.settings
            rtt = self._timings.get("rtt")
            out = {
                "frames_received": self._frames_received,
                "frames_processed": self._frames_processed,
                "frames_failed": self._frames_failed,
                "frames_dropped": int(client.get("dropped", 0) or 0),
                "timeouts": int(client.get("timeouts", 0) or 0),
                "fps": round(self._rate.rate(), 2),
                "fps_shown": rounded(client.get("fps")) if is_number(client.get("fps")) else None,
                "latency_ms_p50": rounded(rtt.percentile(50)) if rtt else None,
                "latency_ms_p95": rounded(rtt.percentile(95)) if rtt else None,
                "transport_ping_ms": rounded(client.get("ping_ms")) if is_number(client.get("ping_ms")) else None,
                "frame_size": self._frame_size,
                "bytes_in": self._bytes_in,
                "bytes_out": self._bytes_out,
                "transport": client.get("format"),
                "compositing": {"matte": "page", "picture": "kernel"}.get(self._kind or "", None),
                "model": self.pipeline.segmenter.name,
                "internal_resolution": settings.internal_resolution,
                "effect": settings.effect,
                "last_error": self._last_error,
                "uptime_s": round(time.perf_counter() - self._started, 1),
            }
            for stage in sorted(self._timings):
                if stage != "rtt":
                    out[f"{stage}_ms_p50"] = self._p50(stage, 2)
            return out

    # -- processing ----------------------------------------------------------------------------

    def _set_threads(self) -> None:
        n = self.torch_threads
        if n is not None:
            import torch

            if torch.get_num_threads() != n:
                torch.set_num_threads(n)

    def process(self, image: ImageLike) -> Result:
        """Process the stream's next frame with the current segmenter and settings."""
        self._set_threads()
        return self.stream.process(image)

    def _reply_format(self, request_format: str, channels: int) -> str:
        fmt = request_format if self.reply_format == "auto" else self.reply_format
        if fmt == "jpeg" and channels == 4:
            return "webp"  # keep the cutout's transparency
        return fmt

    def _error(self, message: str, seq: Any = None, code: str = "bad-message") -> tuple[dict, list]:
        with self._lock:
            self._frames_failed += 1
            self._last_error = message
            first = message not in self._errors_logged
            if first and len(self._errors_logged) < 100:
                self._errors_logged.add(message)
        if first:
            log.warning("bgkit live: %s (further identical errors are counted, not logged)", message)
        return {"type": "error", "code": code, "seq": seq if isinstance(seq, int) else None, "error": message}, []

    def handle_message(self, content: Any, buffers: Sequence[Any] | None = None) -> tuple[dict, list]:
        """Answer one message from the page: returns (reply content, reply buffers). Never raises.

        ``{"type": "frame"}`` gives ``{"type": "result", ...}`` with the processed picture as one
        buffer; ``{"type": "ping"}`` gives ``{"type": "pong"}``; anything else, or a frame that
        cannot be decoded or processed, gives ``{"type": "error", "error": "..."}``.
        """
        try:
            return self._handle(content, buffers)
        except Exception as exc:  # noqa: BLE001 - the loop must survive anything
            seq = content.get("seq") if isinstance(content, dict) else None
            return self._error(f"internal error: {type(exc).__name__}: {exc}", seq, code="internal")

    def _client_report(self, client: dict) -> None:
        """Fold in what the page measured (round trips, its encode and draw times)."""
        self._client = client
        rtts = client.get("rtt_ms")
        if is_number(rtts):
            rtts = [rtts]
        if isinstance(rtts, list):
            for x in rtts:
                if is_number(x):
                    self._time("rtt", x)
        for key in ("grab_ms", "encode_ms", "draw_ms", "decode_ms", "capture_ms", "composite_ms"):
            if is_number(client.get(key)):
                self._time(f"page_{key[:-3]}", client[key])

    def _handle(self, content: Any, buffers: Sequence[Any] | None) -> tuple[dict, list]:
        if not isinstance(content, dict):
            return self._error(f"message must be a JSON object; got {type(content).__name__}")
        kind = content.get("type")
        if kind == "ping":
            return {"type": "pong", "t": content.get("t"), "protocol": PROTOCOL_VERSION}, []
        if kind != "frame":
            return self._error(f"unknown message type {kind!r} (expected 'frame' or 'ping')", content.get("seq"))
        t0 = time.perf_counter()
        with self._lock:
            self._frames_received += 1
        try:
            header, frame = decode_frame(content, buffers)
        except ProtocolError as exc:
            return self._error(str(exc), content.get("seq"))
        t1 = time.perf_counter()
        with self._lock:
            self._client_report(header.client)
        settings = self.pipeline.settings
        frame_settings = self._frame_settings(header, settings)
        self._set_threads()
        try:
            seg = self.stream.segment(frame, settings=frame_settings)
            as_matte = "matte" in header.accept and self.compositing != "kernel" and matte.page_can_compose(settings, seg)
            out = None if as_matte else self.pipeline.render(frame, seg)  # drawing ignores internal_resolution
        except Exception as exc:  # noqa: BLE001 - report, keep the loop alive
            return self._error(f"processing failed: {type(exc).__name__}: {exc}", header.seq, code="processing")
        t2 = time.perf_counter()
        extra: dict[str, Any] = {}
        buffers_out: list[Any]
        if as_matte:
            m = matte.encode_matte(seg)
            buffers_out = [m.tobytes()]
            bg_id = None
            if settings.effect == "replace" and settings.background_image is not None:
                bg_id = self._background_id(settings.background_image)
                shown = header.display or (header.width, header.height)
                if self._sent_background != (bg_id, *shown):
                    picture = np.ascontiguousarray(cover(settings.background_image, *shown)[:, :, :3])
                    buffers_out.append(picture.tobytes())
                    extra["background_image"] = {"id": bg_id, "width": shown[0], "height": shown[1], "format": "rgb"}
                    self._sent_background = (bg_id, *shown)
            kind, fmt, channels, out_h, out_w = "matte", "matte", 1, m.shape[0], m.shape[1]
            extra["look"] = matte.look(settings, bg_id)
            payload_bytes = sum(len(b) for b in buffers_out)
        else:
            assert out is not None
            channels = out.shape[2] if out.ndim == 3 else 1
            fmt = self._reply_format(header.format, channels)
            buffers_out = [encode_image(out, fmt, self.jpeg_quality)]
            kind, out_h, out_w = "picture", out.shape[0], out.shape[1]
            payload_bytes = len(buffers_out[0])
        t3 = time.perf_counter()
        process_ms = (t3 - t0) * 1000.0
        with self._lock:
            self._frames_processed += 1
            self._rate.tick()
            self._time("decode", (t1 - t0) * 1000.0)
            for stage, ms in seg.timings.items():
                self._time(stage, ms)
            self._time("pipeline", (t2 - t1) * 1000.0)
            self._time("encode", (t3 - t2) * 1000.0)
            self._time("process", process_ms)
            self._frame_size = (header.width, header.height)
            self._bytes_in = _as_bytes(buffers[0]).nbytes if buffers else 0
            self._bytes_out = payload_bytes
            if as_matte:
                self._last_output, self._last_matte = None, (frame, m, settings)
            else:
                self._last_output, self._last_matte = out, None
            self._last_error = None
            self._kind = kind
            fps = self._rate.rate()
        reply = {
            "type": "result",
            "kind": kind,
            "seq": header.seq,
            "t": header.t,
            "width": int(out_w),
            "height": int(out_h),
            "channels": int(channels),
            "format": fmt,
            "model": seg.model,
            "model_ms": round(seg.timings.get("model", seg.elapsed_ms), 2),
            "process_ms": round(process_ms, 2),
            "stages_ms": {k: round(v, 2) for k, v in seg.timings.items()},
            "kernel_fps": round(fps, 2),
            "bytes_in": self._bytes_in,
            "bytes_out": payload_bytes,
            "want": self.want(header.display or (header.width, header.height), "matte" in header.accept, seg),
            **extra,
        }
        return reply, buffers_out

    # -- the matte path ---------------------------------------------------------------------------

    def _background_id(self, image: np.ndarray) -> str:
        known = self._background_ids.get(id(image))
        if known is None or known[0] is not image:
            if len(self._background_ids) > 8:
                self._background_ids.clear()
            known = self._background_ids[id(image)] = (image, matte.image_id(image))
        return known[1]

    def _frame_settings(self, header: FrameRequest, settings: EffectSettings) -> EffectSettings:
        """The settings for a frame the page scaled down to the model's size (see :meth:`want`):
        the model then takes it as it is (``internal_resolution`` "full", or a fixed-size model's
        own size)."""
        display = header.display
        if display is None or display == (header.width, header.height):
            return settings
        spec = self.pipeline.segmenter.spec
        if settings.internal_resolution is None and spec.native_size is not None:
            return settings
        return settings.updated(internal_resolution="full")

    def want(self, display: tuple[int, int], accepts_matte: bool, seg: Any = None) -> dict[str, Any]:
        """What the kernel asks the page to send next for a ``display`` (width, height) picture:
        ``{"kind": "matte", "width", "height"}`` (the frame at the size the model works at; the
        display size for a matting model, whose own refiner works at full size) where the page
        can composite, else ``{"kind": "picture", ...}`` at the display size."""
        settings = self.pipeline.settings
        w, h = display
        if not accepts_matte or self.compositing == "kernel" or not matte.page_can_compose(settings, seg):
            return {"kind": "picture", "width": w, "height": h}
        segmenter = self.pipeline.segmenter
        if segmenter.spec.predicts_alpha:
            return {"kind": "matte", "width": w, "height": h}
        mh, mw = segmenter.model_input_size(h, w, settings.internal_resolution)
        if mw >= w or mh >= h:  # never ask for more than the camera gives
            return {"kind": "matte", "width": w, "height": h}
        return {"kind": "matte", "width": int(mw), "height": int(mh)}
