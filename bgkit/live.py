"""Kernel side of the live-camera loop: the frame protocol, frame processing and statistics.

The BodyPix demo runs one loop in the browser: ``requestVideoFrameCallback`` -> segment -> draw.
bgkit splits that loop between the page and the Python kernel::

    browser (bgkit/widgets/live.js)                      kernel (this module)
    -------------------------------                      --------------------
    video frame -> canvas -> RGBA or JPEG bytes
    send {"type": "frame", seq, t, w, h, format} + bytes  ->  decode_frame()
                                                              FrameProcessor.process(frame) (smoothing)
                                                              encode_image()
    draw the picture; round trip = now - t            <-  {"type": "result", seq, t, model_ms, ...} + bytes

At most ``max_in_flight`` frames (default 1) are on their way; camera frames that come while the
kernel is busy are dropped, never queued, so the picture is always as fresh as the kernel allows.
A frame whose reply does not come within ``timeout_ms`` is given up, so a lost reply cannot stop
the loop. Anything wrong with a message gives an ``{"type": "error"}`` reply, never an exception
in the kernel.

Nothing here imports a widget library: :class:`LiveProcessor` is driven by
:class:`bgkit.widgets.LiveBackground`, by the tests and by ``benchmarks/live_fps.py``, and
:class:`SimulatedClient` plays the browser's part without a browser (tests, headless notebooks).
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from . import pipeline
from .imageio import ImageLike, load_image, save_image
from .pipeline import EffectSettings
from .segmenter import Segmenter

__all__ = [
    "FRAME_FORMATS",
    "MAX_FRAME_PIXELS",
    "PROTOCOL_VERSION",
    "REPLY_FORMATS",
    "FrameRequest",
    "LiveProcessor",
    "NODELAY_SERVER_OPTION",
    "ProtocolError",
    "RollingStats",
    "SimulatedClient",
    "decode_frame",
    "decode_image",
    "decode_reply",
    "encode_frame",
    "encode_image",
]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
#: Formats the page may send frames in: raw RGBA bytes (``width * height * 4``) or a JPEG file.
FRAME_FORMATS = ("rgba", "jpeg")
#: Formats of the processed picture sent back. "webp" keeps the alpha of the "cutout" effect
#: when frames travel as JPEG; "rgba" is raw bytes like the request.
REPLY_FORMATS = ("rgba", "jpeg", "webp", "png")
#: Largest frame accepted (pixels): 4096 x 4096. Bigger claims are refused before any decoding.
MAX_FRAME_PIXELS = 4096 * 4096
#: How many recent frames the percentiles in :attr:`LiveProcessor.stats` are taken over.
STATS_WINDOW = 120
#: Frames per second are counted over this many recent seconds.
FPS_WINDOW_S = 2.0


class ProtocolError(ValueError):
    """A message that does not follow the frame protocol (says what is wrong with it)."""


# --------------------------------------------------------------------------------------------
# Encoding and decoding pictures and messages
# --------------------------------------------------------------------------------------------


def _as_bytes(buf: Any) -> memoryview:
    """A flat byte view of a message buffer (bytes, bytearray, memoryview, numpy array)."""
    if isinstance(buf, memoryview):
        mv = buf
    elif isinstance(buf, (bytes, bytearray)):
        mv = memoryview(buf)
    elif isinstance(buf, np.ndarray):
        mv = memoryview(np.ascontiguousarray(buf))
    else:
        try:
            mv = memoryview(buf)
        except TypeError:
            raise ProtocolError(f"frame buffer must be bytes-like; got {type(buf).__name__}") from None
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    return mv


def encode_image(image: np.ndarray, fmt: str = "jpeg", quality: int = 80) -> bytes:
    """Encode an (H, W, 3) RGB or (H, W, 4) RGBA uint8 array as ``fmt`` ("rgba", "jpeg", "webp", "png").

    "rgba" is the raw bytes, row by row, 4 per pixel (RGB gets alpha 255). "jpeg" drops alpha.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3|4) uint8 array; got {arr.dtype} {arr.shape}")
    if fmt == "rgba":
        if arr.shape[2] == 3:
            out = np.empty(arr.shape[:2] + (4,), np.uint8)
            out[:, :, :3] = arr
            out[:, :, 3] = 255
            arr = out
        return np.ascontiguousarray(arr).tobytes()
    if fmt not in REPLY_FORMATS:
        raise ValueError(f"format must be one of {', '.join(REPLY_FORMATS)}; got {fmt!r}")
    if fmt == "jpeg" and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    im = Image.fromarray(np.ascontiguousarray(arr))
    bio = io.BytesIO()
    if fmt == "jpeg":
        im.save(bio, "JPEG", quality=int(quality))
    elif fmt == "webp":
        im.save(bio, "WEBP", quality=int(quality), method=0)
    else:
        im.save(bio, "PNG", compress_level=1)
    return bio.getvalue()


def decode_image(data: Any, fmt: str, width: int, height: int, channels: int = 3) -> np.ndarray:
    """Decode bytes made by :func:`encode_image` (or by the page) into (H, W, channels) uint8.

    Raises :class:`ProtocolError` when the bytes do not match the format or the announced size.
    """
    mv = _as_bytes(data)
    if fmt == "rgba":
        expected = width * height * 4
        if mv.nbytes != expected:
            raise ProtocolError(
                f"rgba frame of {width}x{height} needs {expected} bytes; got {mv.nbytes}"
            )
        arr = np.frombuffer(mv, dtype=np.uint8).reshape(height, width, 4)
        return np.ascontiguousarray(arr[:, :, :channels])
    if fmt not in REPLY_FORMATS:
        raise ProtocolError(f"unknown picture format {fmt!r}; expected one of {', '.join(REPLY_FORMATS)}")
    try:
        with Image.open(io.BytesIO(mv.tobytes() if not isinstance(data, bytes) else data)) as im:
            if im.format is None or im.format.lower() != ("jpeg" if fmt == "jpeg" else fmt):
                raise ProtocolError(f"frame says {fmt!r} but the bytes are {im.format or 'unknown'}")
            if im.size != (width, height):
                raise ProtocolError(f"frame says {width}x{height} but the {fmt} picture is {im.size[0]}x{im.size[1]}")
            arr = np.array(im.convert("RGBA" if channels == 4 else "RGB"))  # writable, for torch
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for corrupt data
        raise ProtocolError(f"could not decode the {fmt} frame ({type(exc).__name__}: {exc})") from None
    return arr


@dataclass(frozen=True)
class FrameRequest:
    """The header of one frame message from the page (see the module doc)."""

    seq: int
    t: float
    width: int
    height: int
    format: str
    client: dict = field(default_factory=dict)


def _number(content: dict, key: str, kind: type, default: Any = None) -> Any:
    value = content.get(key, default)
    if value is None:
        raise ProtocolError(f"frame message is missing {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{key!r} must be a number; got {type(value).__name__}")
    if kind is int:
        if not float(value).is_integer():
            raise ProtocolError(f"{key!r} must be a whole number; got {value!r}")
        return int(value)
    if not math.isfinite(float(value)):
        raise ProtocolError(f"{key!r} must be finite; got {value!r}")
    return float(value)


def parse_frame_header(content: Any) -> FrameRequest:
    """Validate a frame message's JSON part; :class:`ProtocolError` says what is wrong."""
    if not isinstance(content, dict):
        raise ProtocolError(f"message must be a JSON object; got {type(content).__name__}")
    if content.get("type") != "frame":
        raise ProtocolError(f"not a frame message (type {content.get('type')!r})")
    seq = _number(content, "seq", int)
    t = _number(content, "t", float, 0.0)
    width = _number(content, "width", int)
    height = _number(content, "height", int)
    if width <= 0 or height <= 0:
        raise ProtocolError(f"frame size must be positive; got {width}x{height}")
    if width * height > MAX_FRAME_PIXELS:
        raise ProtocolError(f"frame of {width}x{height} is larger than the {MAX_FRAME_PIXELS} pixels allowed")
    fmt = content.get("format", "rgba")
    if fmt not in FRAME_FORMATS:
        raise ProtocolError(f"frame format must be one of {', '.join(FRAME_FORMATS)}; got {fmt!r}")
    client = content.get("client") or {}
    if not isinstance(client, dict):
        client = {}
    return FrameRequest(seq=seq, t=t, width=width, height=height, format=fmt, client=client)


def decode_frame(content: Any, buffers: Sequence[Any] | None) -> tuple[FrameRequest, np.ndarray]:
    """Decode a frame message from the page: returns (header, (H, W, 3) uint8 RGB frame)."""
    header = parse_frame_header(content)
    if not buffers:
        raise ProtocolError(f"frame {header.seq} came without its picture (no binary buffer)")
    frame = decode_image(buffers[0], header.format, header.width, header.height, channels=3)
    return header, frame


def encode_frame(
    image: ImageLike, fmt: str = "jpeg", seq: int = 0, t: float | None = None, quality: int = 80,
    client: dict | None = None,
) -> tuple[dict, list[bytes]]:
    """Build the frame message the page sends for ``image`` (for tests and simulated clients)."""
    if fmt not in FRAME_FORMATS:
        raise ValueError(f"frame format must be one of {', '.join(FRAME_FORMATS)}; got {fmt!r}")
    rgb = load_image(image)
    h, w = rgb.shape[:2]
    content = {
        "type": "frame", "seq": int(seq), "t": time.perf_counter() * 1000.0 if t is None else float(t),
        "width": w, "height": h, "format": fmt, "client": dict(client or {}),
    }
    return content, [encode_image(rgb, fmt, quality)]


def decode_reply(content: dict, buffers: Sequence[Any] | None) -> np.ndarray:
    """The picture in a ``result`` reply, as the page would draw it: (H, W, 3) RGB or (H, W, 4) RGBA."""
    if content.get("type") != "result":
        raise ProtocolError(f"not a result reply: {content!r}")
    if not buffers:
        raise ProtocolError("result reply without its picture")
    channels = int(content.get("channels", 3))
    fmt = content["format"]
    if fmt == "rgba":
        return decode_image(buffers[0], "rgba", content["width"], content["height"], channels=channels)
    return decode_image(buffers[0], fmt, content["width"], content["height"], channels=channels)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


class RollingStats:
    """Recent values of one measurement (last ``window`` values): percentiles and mean."""

    def __init__(self, window: int = STATS_WINDOW) -> None:
        self._values: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        if value is not None and math.isfinite(value):
            self._values.append(float(value))

    def extend(self, values: Iterable[float]) -> None:
        for v in values:
            self.add(v)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        return float(np.percentile(np.fromiter(self._values, float), q))

    def mean(self) -> float | None:
        return float(np.mean(self._values)) if self._values else None

    def clear(self) -> None:
        self._values.clear()


class RateMeter:
    """Events per second over the last ``window_s`` seconds (or since the meter started, if later)."""

    def __init__(self, window_s: float = FPS_WINDOW_S, clock: Callable[[], float] = time.perf_counter) -> None:
        self.window_s = window_s
        self.clock = clock
        self._times: deque[float] = deque()
        self._start = clock()

    def tick(self) -> None:
        self._times.append(self.clock())
        self._trim()

    def _trim(self) -> None:
        cutoff = self.clock() - self.window_s
        while self._times and self._times[0] < cutoff:
            self._times.popleft()

    def rate(self) -> float:
        self._trim()
        if not self._times:
            return 0.0
        span = min(self.window_s, self.clock() - self._start)
        return len(self._times) / max(span, 1e-3)

    def clear(self) -> None:
        self._times.clear()
        self._start = self.clock()


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


# --------------------------------------------------------------------------------------------
# The processor
# --------------------------------------------------------------------------------------------


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
    """Turns frame messages into result messages with a :class:`bgkit.pipeline.FrameProcessor`.

    Thread safe: widget messages arrive on a kernel thread of their own (JupyterLab's comms over
    subshells) while notebook code changes settings on the main thread. The segmenter and settings
    are swapped under a lock, and each frame is processed with one consistent (segmenter, settings)
    pair taken under that lock; frames themselves are processed one at a time.

    Args:
        segmenter: a loaded :class:`bgkit.Segmenter`.
        settings: the :class:`EffectSettings` to start with (default: ``EffectSettings()``).
        reply_format: "auto" (the request's format; "webp" instead of "jpeg" for RGBA output such
            as the "cutout" effect) or one of :data:`REPLY_FORMATS`.
        jpeg_quality: quality (1..100) of JPEG/WebP replies.
        torch_threads: threads torch may use for each frame, set on the thread that processes the
            frames (``torch.set_num_threads`` there; the main thread keeps its own setting, threads
            started later inherit it). "auto": half the CPUs, at least 1, so the browser and the
            Jupyter server keep some for themselves (on a 2-core machine this more than doubles the
            frame rate under load). None: leave torch's setting alone.
    """

    def __init__(
        self, segmenter: Segmenter, settings: EffectSettings | None = None, reply_format: str = "auto",
        jpeg_quality: int = 80, torch_threads: int | str | None = "auto",
    ) -> None:
        if reply_format != "auto" and reply_format not in REPLY_FORMATS:
            raise ValueError(f"reply_format must be 'auto' or one of {', '.join(REPLY_FORMATS)}; got {reply_format!r}")
        self.torch_threads = resolve_torch_threads(torch_threads)
        self._lock = threading.RLock()  # guards segmenter/settings and the stats
        self._work_lock = threading.Lock()  # one frame at a time
        # segmenter, settings and per-stream state (temporal smoothing history) live in one
        # FrameProcessor: the frames are one video stream
        self._stream = pipeline.FrameProcessor(segmenter, settings if settings is not None else EffectSettings())
        self.reply_format = reply_format
        self.jpeg_quality = int(jpeg_quality)
        self._last_output: np.ndarray | None = None
        self._last_seq: int | None = None
        self._errors_logged: set[str] = set()
        self.reset_stats()

    # -- state ---------------------------------------------------------------------------------

    @property
    def segmenter(self) -> Segmenter:
        return self._stream.segmenter

    @segmenter.setter
    def segmenter(self, segmenter: Segmenter) -> None:
        if segmenter is not self._stream.segmenter:
            self._stream.segmenter = segmenter  # another model: its smoothing history starts afresh

    @property
    def settings(self) -> EffectSettings:
        return self._stream.settings

    @settings.setter
    def settings(self, settings: EffectSettings) -> None:
        self._stream.settings = settings

    def update(self, **changes: Any) -> EffectSettings:
        """Change some settings (validated; applies from the next frame). Returns the new settings."""
        return self._stream.update(**changes)

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
            self._model_ms = RollingStats()
            self._process_ms = RollingStats()
            self._decode_ms = RollingStats()
            self._encode_ms = RollingStats()
            self._rtt_ms = RollingStats()
            self._page_encode_ms = RollingStats()
            self._page_draw_ms = RollingStats()
            self._client: dict = {}
            self._last_error: str | None = None
            self._started = time.perf_counter()

    @property
    def last_output(self) -> np.ndarray | None:
        """The last processed picture ((H, W, 3) RGB or (H, W, 4) RGBA), or None."""
        with self._lock:
            return self._last_output

    def snapshot(self, path: str | os.PathLike | None = None) -> np.ndarray | Path:
        """The last processed picture; saved to ``path`` (format from its suffix) when given."""
        out = self.last_output
        if out is None:
            raise RuntimeError(
                "no frame has been processed yet: display the widget in JupyterLab and allow the camera"
            )
        if path is None:
            return out.copy()
        return save_image(out, path)

    @property
    def stats(self) -> dict:
        """Counters and timings of the live loop (a fresh dict; see the keys for what is measured).

        ``fps`` is frames processed per second by the kernel over the last two seconds;
        ``fps_shown`` and the ``latency_ms_*`` round-trip times (frame captured in the page ->
        processed picture drawn) are measured by the page and reported with its next frame.
        """
        with self._lock:
            client = dict(self._client)
            settings = self._stream.settings
            return {
                "frames_received": self._frames_received,
                "frames_processed": self._frames_processed,
                "frames_failed": self._frames_failed,
                "frames_dropped": int(client.get("dropped", 0) or 0),
                "timeouts": int(client.get("timeouts", 0) or 0),
                "fps": round(self._rate.rate(), 2),
                "fps_shown": _r(client.get("fps")),
                "latency_ms_p50": _r(self._rtt_ms.percentile(50)),
                "latency_ms_p95": _r(self._rtt_ms.percentile(95)),
                "model_ms_p50": _r(self._model_ms.percentile(50)),
                "process_ms_p50": _r(self._process_ms.percentile(50)),
                "decode_ms_p50": _r(self._decode_ms.percentile(50), 2),
                "encode_ms_p50": _r(self._encode_ms.percentile(50), 2),
                "page_encode_ms_p50": _r(self._page_encode_ms.percentile(50)),
                "page_draw_ms_p50": _r(self._page_draw_ms.percentile(50)),
                "transport_ping_ms": _r(client.get("ping_ms")) if _is_number(client.get("ping_ms")) else None,
                "frame_size": self._frame_size,
                "bytes_in": self._bytes_in,
                "bytes_out": self._bytes_out,
                "transport": client.get("format"),
                "model": self._stream.segmenter.name,
                "internal_resolution": settings.internal_resolution,
                "effect": settings.effect,
                "last_error": self._last_error,
                "uptime_s": round(time.perf_counter() - self._started, 1),
            }

    # -- processing ----------------------------------------------------------------------------

    def _set_threads(self) -> None:
        n = self.torch_threads
        if n is not None:
            import torch

            if torch.get_num_threads() != n:
                torch.set_num_threads(n)

    def process(self, image: ImageLike) -> tuple[np.ndarray, Any]:
        """Process the stream's next frame with the current segmenter and settings.

        Goes through :class:`bgkit.pipeline.FrameProcessor`, so temporal smoothing (when
        ``settings.temporal_smoothing``) carries over from frame to frame; changing the model
        starts its history afresh.
        """
        with self._work_lock:
            self._set_threads()
            return self._stream.process(image)

    def reset_stream(self) -> None:
        """Forget the temporal-smoothing history (camera restarted, scene changed)."""
        self._stream.reset()

    def _reply_format(self, request_format: str, channels: int) -> str:
        fmt = self.reply_format
        if fmt == "auto":
            fmt = request_format
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
            self._client = header.client
            rtts = header.client.get("rtt_ms")
            if isinstance(rtts, (int, float)) and not isinstance(rtts, bool):
                rtts = [rtts]
            if isinstance(rtts, list):
                self._rtt_ms.extend(x for x in rtts if _is_number(x))
            for key, stat in (("encode_ms", self._page_encode_ms), ("draw_ms", self._page_draw_ms)):
                if _is_number(header.client.get(key)):
                    stat.add(header.client[key])
        try:
            out, seg = self.process(frame)
        except Exception as exc:  # noqa: BLE001 - report, keep the loop alive
            return self._error(f"processing failed: {type(exc).__name__}: {exc}", header.seq, code="processing")
        t2 = time.perf_counter()
        channels = out.shape[2] if out.ndim == 3 else 1
        fmt = self._reply_format(header.format, channels)
        payload = encode_image(out, fmt, self.jpeg_quality)
        t3 = time.perf_counter()
        process_ms = (t3 - t0) * 1000.0
        with self._lock:
            self._frames_processed += 1
            self._rate.tick()
            self._model_ms.add(seg.elapsed_ms)
            self._process_ms.add(process_ms)
            self._decode_ms.add((t1 - t0) * 1000.0)
            self._encode_ms.add((t3 - t2) * 1000.0)
            self._frame_size = (header.width, header.height)
            self._bytes_in = _as_bytes(buffers[0]).nbytes
            self._bytes_out = len(payload)
            self._last_output = out
            self._last_seq = header.seq
            self._last_error = None
            fps = self._rate.rate()
        reply = {
            "type": "result",
            "seq": header.seq,
            "t": header.t,
            "width": int(out.shape[1]),
            "height": int(out.shape[0]),
            "channels": int(channels),
            "format": fmt,
            "model": seg.model,
            "model_ms": round(seg.elapsed_ms, 2),
            "process_ms": round(process_ms, 2),
            "kernel_fps": round(fps, 2),
            "bytes_in": self._bytes_in,
            "bytes_out": len(payload),
        }
        return reply, [payload]


# --------------------------------------------------------------------------------------------
# The Jupyter server's side of the transport
# --------------------------------------------------------------------------------------------

#: Pass this to ``jupyter lab`` to take ~40 ms off every frame's round trip (see below).
NODELAY_SERVER_OPTION = "--ServerApp.kernel_websocket_connection_class=bgkit.live.NoDelayKernelWebsocketConnection"


def _make_nodelay_connection_class() -> type:
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    class NoDelayKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
        """Jupyter server's kernel websocket with TCP_NODELAY (Nagle's algorithm off).

        Jupyter server leaves Nagle's algorithm on for the kernel websockets. Each message the
        kernel answers with comes after a small "busy" status message, and waits for the
        browser's delayed ACK of that one: about 40 ms added to every round trip (measured
        here: an empty page -> kernel -> page message takes ~45 ms instead of ~2 ms). For the
        live camera that is a large share of the frame budget. Enable with::

            jupyter lab --ServerApp.kernel_websocket_connection_class=bgkit.live.NoDelayKernelWebsocketConnection

        or in ``jupyter_server_config.py``: ``c.ServerApp.kernel_websocket_connection_class =
        "bgkit.live.NoDelayKernelWebsocketConnection"``.
        """

        def connect(self):  # type: ignore[override]
            try:
                self.websocket_handler.set_nodelay(True)
            except Exception:  # noqa: BLE001 - an optimisation only
                pass
            return super().connect()

    NoDelayKernelWebsocketConnection.__module__ = __name__
    NoDelayKernelWebsocketConnection.__qualname__ = "NoDelayKernelWebsocketConnection"
    return NoDelayKernelWebsocketConnection


def __getattr__(name: str) -> Any:
    # built on first use so that importing bgkit.live does not need jupyter_server
    if name == "NoDelayKernelWebsocketConnection":
        cls = _make_nodelay_connection_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# A browser stand-in
# --------------------------------------------------------------------------------------------


class SimulatedClient:
    """Plays the page's part of the loop in Python: encodes frames, measures round trips, decodes replies.

    ``send`` is any callable taking (content, buffers) and returning (reply, reply_buffers), such
    as :meth:`LiveProcessor.handle_message`. Used by the tests, the benchmark's ``--offline`` mode
    and the notebook when no browser is attached.
    """

    def __init__(self, send: Callable[[dict, list], tuple[dict, list]], fmt: str = "jpeg", quality: int = 80) -> None:
        self.send = send
        self.fmt = fmt
        self.quality = quality
        self.seq = 0
        self._rtts: list[float] = []
        self._shown = RateMeter()
        self.rtt_ms = RollingStats()

    def roundtrip(self, image: ImageLike) -> tuple[dict, np.ndarray | None]:
        """Send ``image`` as one frame; returns (reply header, decoded picture or None on error)."""
        self.seq += 1
        client = {"fps": round(self._shown.rate(), 2), "rtt_ms": self._rtts, "format": self.fmt}
        t0 = time.perf_counter()
        content, buffers = encode_frame(image, self.fmt, self.seq, t0 * 1000.0, self.quality, client)
        reply, reply_buffers = self.send(content, buffers)
        picture = decode_reply(reply, reply_buffers) if reply.get("type") == "result" else None
        rtt = (time.perf_counter() - t0) * 1000.0
        self._rtts = [round(rtt, 2)]
        if picture is not None:
            self._shown.tick()
            self.rtt_ms.add(rtt)
        return reply, picture

    @property
    def fps(self) -> float:
        return self._shown.rate()
