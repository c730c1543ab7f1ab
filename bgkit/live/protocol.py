"""The live camera's frame protocol: the messages between the page and the kernel.

The BodyPix demo runs one loop in the browser: ``requestVideoFrameCallback`` -> segment -> draw.
bgkit splits that loop between the page and the Python kernel::

    browser (bgkit/live/widget.js)                        kernel (bgkit.live.processor)
    ------------------------------                        -----------------------------
    video frame -> canvas (at the size the kernel asked for) -> RGBA or JPEG bytes
    send {"type": "frame", seq, t, w, h, format,
          display: [W, H], accept: ["matte", "picture"]}
          + bytes                                     ->  decode_frame()
                                                          the pipeline's stream (model, refinement,
                                                          smoothing, soft alpha)
       kind "matte": composite the effect from the    <-  {"type": "result", kind: "matte", look,
       matte scaled up to W x H over the camera's         want: {kind, width, height}, ...}
       own picture (widget.js, composeMatte)              + the matte (1 byte per pixel)
       kind "picture": draw it                         <-  {"type": "result", kind: "picture", ...}
                                                          + the picture the kernel drew
    round trip = now - t

``kind: "matte"`` (see :mod:`bgkit.live.matte`) is the fast path, for the BodyPix demo's four
effects: the frame travels at the size the model works at, the reply is the alpha matte, and the
page composites. The kernel draws the picture itself (``kind: "picture"``) for the body-part
effects, for a matting model's foreground colours, when the page does not accept mattes, or when
``LiveBackground(compositing="kernel")``. Each reply says, in ``want``, the kind and the frame
size the kernel wants next; the page follows from its next frame on.

At most ``max_in_flight`` frames (default 1) are on their way; camera frames that come while the
kernel is busy are dropped, never queued, so the picture is always as fresh as the kernel allows.
A frame whose reply does not come within ``timeout_ms`` is given up, so a lost reply cannot stop
the loop. Anything wrong with a message gives an ``{"type": "error"}`` reply, never an exception
in the kernel.

Nothing here imports a widget library. :class:`SimulatedClient` plays the browser's part without
a browser (tests, the benchmark's offline mode, headless notebooks).
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from ..io.images import ImageLike, load_image
from .stats import RateMeter, RollingStats

__all__ = [
    "FRAME_FORMATS",
    "MAX_FRAME_PIXELS",
    "PROTOCOL_VERSION",
    "REPLY_FORMATS",
    "FrameRequest",
    "ProtocolError",
    "SimulatedClient",
    "decode_frame",
    "decode_image",
    "decode_reply",
    "encode_frame",
    "encode_image",
]

PROTOCOL_VERSION = 1
#: Formats the page may send frames in: raw RGBA bytes (``width * height * 4``) or a JPEG file.
FRAME_FORMATS = ("rgba", "jpeg")
#: Formats of the processed picture sent back. "webp" keeps the alpha of the "cutout" effect
#: when frames travel as JPEG; "rgba" is raw bytes like the request.
REPLY_FORMATS = ("rgba", "jpeg", "webp", "png")
#: Largest frame accepted (pixels): 4096 x 4096. Bigger claims are refused before any decoding.
MAX_FRAME_PIXELS = 4096 * 4096


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
    #: (width, height) of the picture the page shows (the camera's frame before any scaling).
    display: tuple[int, int] | None = None
    #: What the page can draw from a reply: "picture" (always) and "matte" (it composites).
    accept: tuple[str, ...] = ("picture",)


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
    display = content.get("display")
    if display is not None:
        if (not isinstance(display, (list, tuple)) or len(display) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16384 for v in display)):
            raise ProtocolError(f"'display' must be [width, height] in pixels; got {display!r}")
        display = (int(display[0]), int(display[1]))
    accept = content.get("accept") or ["picture"]
    if not isinstance(accept, (list, tuple)) or not all(isinstance(a, str) for a in accept):
        raise ProtocolError(f"'accept' must be a list of reply kinds; got {accept!r}")
    return FrameRequest(seq=seq, t=t, width=width, height=height, format=fmt, client=client, display=display,
                        accept=tuple(accept))


def decode_frame(content: Any, buffers: Sequence[Any] | None) -> tuple[FrameRequest, np.ndarray]:
    """Decode a frame message from the page: returns (header, (H, W, 3) uint8 RGB frame)."""
    header = parse_frame_header(content)
    if not buffers:
        raise ProtocolError(f"frame {header.seq} came without its picture (no binary buffer)")
    frame = decode_image(buffers[0], header.format, header.width, header.height, channels=3)
    return header, frame


def encode_frame(
    image: ImageLike, fmt: str = "jpeg", seq: int = 0, t: float | None = None, quality: int = 80,
    client: dict | None = None, display: tuple[int, int] | None = None, accept: Sequence[str] = ("picture",),
) -> tuple[dict, list[bytes]]:
    """Build the frame message the page sends for ``image`` (for tests and simulated clients).

    ``display``: the (width, height) the page shows (default: the image's own size);
    ``accept``: the reply kinds the page can draw ("picture", "matte").
    """
    if fmt not in FRAME_FORMATS:
        raise ValueError(f"frame format must be one of {', '.join(FRAME_FORMATS)}; got {fmt!r}")
    rgb = load_image(image)
    h, w = rgb.shape[:2]
    content = {
        "type": "frame", "seq": int(seq), "t": time.perf_counter() * 1000.0 if t is None else float(t),
        "width": w, "height": h, "format": fmt, "client": dict(client or {}),
        "display": list(display) if display is not None else [w, h], "accept": list(accept),
    }
    return content, [encode_image(rgb, fmt, quality)]


def decode_reply(content: dict, buffers: Sequence[Any] | None) -> np.ndarray:
    """The picture in a ``result`` reply of kind "picture": (H, W, 3) RGB or (H, W, 4) RGBA; for a
    "matte" reply, the (h, w) uint8 matte (see :mod:`bgkit.live.matte` to draw it)."""
    if content.get("type") != "result":
        raise ProtocolError(f"not a result reply: {content!r}")
    if not buffers:
        raise ProtocolError("result reply without its picture")
    if content.get("kind") == "matte":
        w, h = int(content["width"]), int(content["height"])
        mv = _as_bytes(buffers[0])
        if mv.nbytes != w * h:
            raise ProtocolError(f"a {w}x{h} matte needs {w * h} bytes; got {mv.nbytes}")
        return np.frombuffer(mv, dtype=np.uint8).reshape(h, w).copy()
    channels = int(content.get("channels", 3))
    fmt = content["format"]
    if fmt == "rgba":
        return decode_image(buffers[0], "rgba", content["width"], content["height"], channels=channels)
    return decode_image(buffers[0], fmt, content["width"], content["height"], channels=channels)



# --------------------------------------------------------------------------------------------
# A browser stand-in
# --------------------------------------------------------------------------------------------


class SimulatedClient:
    """Plays the page's part of the loop in Python: encodes frames, measures round trips, draws replies.

    ``send`` is any callable taking (content, buffers) and returning (reply, reply_buffers), such
    as :meth:`LiveProcessor.handle_message`. ``mode="matte"`` behaves as the page does: it accepts
    matte replies, sends each frame at the size the kernel asked for, and composites the effect
    itself (:func:`bgkit.live.matte.compose_matte`); ``mode="picture"`` takes the kernel's picture.
    Used by the tests, the benchmark's ``--offline`` mode and the notebook when no browser is attached.
    """

    def __init__(self, send: Callable[[dict, list], tuple[dict, list]], fmt: str = "jpeg", quality: int = 80,
                 mode: str = "picture") -> None:
        if mode not in ("picture", "matte"):
            raise ValueError(f"mode must be 'picture' or 'matte'; got {mode!r}")
        self.send = send
        self.fmt = fmt
        self.quality = quality
        self.mode = mode
        self.seq = 0
        self.want: dict | None = None
        self._backgrounds: dict[str, np.ndarray] = {}
        self._rtts: list[float] = []
        self._shown = RateMeter()
        self.rtt_ms = RollingStats()

    def _outgoing(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as the page sends it: scaled to the size the kernel asked for (matte mode)."""
        want = self.want
        if self.mode != "matte" or not want:
            return rgb
        size = (int(want["width"]), int(want["height"]))
        if size == (rgb.shape[1], rgb.shape[0]):
            return rgb
        return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=None))

    def _draw(self, rgb: np.ndarray, reply: dict, buffers: Sequence[Any]) -> np.ndarray:
        if reply.get("kind") != "matte":
            return decode_reply(reply, buffers)
        from .matte import compose_matte, look_settings

        m = decode_reply(reply, buffers)
        info = reply.get("background_image")
        if info:
            pic = decode_image(buffers[1], "rgba", info["width"], info["height"], channels=3) \
                if info.get("format") == "rgba" else np.frombuffer(_as_bytes(buffers[1]), np.uint8).reshape(
                    info["height"], info["width"], 3)
            self._backgrounds = {info["id"]: pic}
        look = reply["look"]
        bg = self._backgrounds.get(look.get("background_image") or "")
        if bg is not None and bg.shape[:2] != rgb.shape[:2]:
            bg = None
        return compose_matte(rgb, m, look_settings(look), bg)

    def roundtrip(self, image: ImageLike) -> tuple[dict, np.ndarray | None]:
        """Send ``image`` as one frame; returns (reply header, picture as the page draws it, or None on error)."""
        self.seq += 1
        client = {"fps": round(self._shown.rate(), 2), "rtt_ms": self._rtts, "format": self.fmt}
        rgb = load_image(image)
        t0 = time.perf_counter()
        sent = self._outgoing(rgb)
        accept = ("matte", "picture") if self.mode == "matte" else ("picture",)
        content, buffers = encode_frame(sent, self.fmt, self.seq, t0 * 1000.0, self.quality, client,
                                        display=(rgb.shape[1], rgb.shape[0]), accept=accept)
        reply, reply_buffers = self.send(content, buffers)
        picture = None
        if reply.get("type") == "result":
            picture = self._draw(rgb, reply, reply_buffers)
            self.want = reply.get("want") or self.want
        rtt = (time.perf_counter() - t0) * 1000.0
        self._rtts = [round(rtt, 2)]
        if picture is not None:
            self._shown.tick()
            self.rtt_ms.add(rtt)
        return reply, picture

    @property
    def fps(self) -> float:
        return self._shown.rate()
