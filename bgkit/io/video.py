"""Video files and folders of frames: read them, write them, keeping the frame rate and the sound.

PyAV (FFmpeg's libraries; no ``ffmpeg`` program needed; ``pip install 'bgkit[video]'``) reads
anything FFmpeg reads; :func:`bgkit.process_video` (in :mod:`bgkit.jobs.video`) runs a video
through the pipeline with these readers and writers.

Output formats, by the output's suffix:

====================  ===========================  =============================  ===============
suffix                video codec                  cut-out (transparent) video    audio
====================  ===========================  =============================  ===============
``.mp4``, ``.m4v``    H.264 (libx264, yuv420p)     not possible: an error says so  copied (AAC, MP3, Opus) or AAC
``.mov``              H.264                        QuickTime Animation (qtrle, ARGB)  copied or AAC
``.mkv``              H.264                        FFV1 (yuva420p, lossless)      copied or AAC
``.webm``             VP9 (libvpx-vp9, yuv420p)    VP9 with alpha (yuva420p)      copied (Opus, Vorbis) or Opus
a folder (no suffix)  PNG frames ``00000.png``...  PNG with alpha                 none
====================  ===========================  =============================  ===============

The output keeps the input's frame timestamps (so its frame rate, constant or not) and its
audio track: copied packet for packet where the container accepts the codec, else re-encoded.
Frames of a folder are timed at ``fps`` (default 25). H.264 and VP9 need even sizes: a frame
with an odd width or height is padded by one edge pixel.

VP9 keeps the alpha channel in a side stream that FFmpeg's own VP9 decoder ignores;
:func:`read_frames` (``alpha=True``) decodes such files with libvpx, which reads it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..core.deps import require
from .images import IMAGE_SUFFIXES, load_image
from .outputs import atomic_path, partial_name

__all__ = [
    "FORMATS",
    "FrameFolderWriter",
    "VideoError",
    "VideoFileWriter",
    "VideoInfo",
    "frame_files",
    "output_format",
    "probe",
    "read_frames",
    "rotation_of",
    "upright",
]

DEFAULT_FOLDER_FPS = Fraction(25)


class VideoError(ValueError):
    """A video that cannot be read or written as asked (the message says why)."""


@dataclass(frozen=True)
class _Format:
    video: str  # encoder for opaque frames
    pix_fmt: str
    alpha_video: str | None  # encoder for RGBA frames, None: the container cannot carry alpha
    alpha_pix_fmt: str | None
    audio_copy: tuple[str, ...]  # audio codecs copied as they are
    audio_encoder: str  # else re-encoded with this
    options: tuple[tuple[str, str], ...] = ()
    alpha_options: tuple[tuple[str, str], ...] = ()


_X264 = (("crf", "18"), ("preset", "fast"))
_VP9 = (("crf", "30"), ("b:v", "0"), ("deadline", "good"), ("cpu-used", "5"), ("row-mt", "1"))

#: What each output suffix is written as.
FORMATS: dict[str, _Format] = {
    ".mp4": _Format("libx264", "yuv420p", None, None, ("aac", "mp3", "opus"), "aac", _X264),
    ".m4v": _Format("libx264", "yuv420p", None, None, ("aac", "mp3"), "aac", _X264),
    ".mov": _Format("libx264", "yuv420p", "qtrle", "argb", ("aac", "mp3", "pcm_s16le", "alac"), "aac", _X264),
    ".mkv": _Format("libx264", "yuv420p", "ffv1", "yuva420p", ("aac", "mp3", "opus", "vorbis", "flac", "ac3"),
                    "aac", _X264),
    ".webm": _Format("libvpx-vp9", "yuv420p", "libvpx-vp9", "yuva420p", ("opus", "vorbis"), "libopus", _VP9,
                     _VP9 + (("auto-alt-ref", "0"),)),
}


def _suffix_list() -> str:
    return ", ".join(FORMATS) + " or a folder (PNG frames)"


# ----------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found out about a video file or a folder of frames."""

    path: str
    width: int
    height: int
    fps: Fraction
    frames: int | None  # None when the container does not say
    duration_s: float | None
    codec: str
    audio_codec: str | None  # None: no audio track
    is_folder: bool = False
    #: counter-clockwise rotation (degrees, a multiple of 90) the player applies from the file's
    #: display matrix; ``width`` and ``height`` are already the upright (displayed) size
    rotation: int = 0

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


_NUMBERED = re.compile(r"^(\D*)(\d+)$")


def frame_files(folder: Path) -> list[Path]:
    """The image files of a folder of frames, in frame-number order (else name order)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    if not files:
        raise VideoError(f"{folder}: the folder holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
    matches = [_NUMBERED.match(p.stem) for p in files]
    if all(matches):
        return [p for _, p in sorted(zip(matches, files), key=lambda mp: (mp[0].group(1), int(mp[0].group(2))))]  # type: ignore[union-attr]
    return sorted(files)


def _check_input(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such video file or folder of frames: {p}")
    return p


def _open_input(p: Path) -> Any:
    av = require("av")

    try:
        container = av.open(str(p), "r")
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot read {p} as a video: {exc}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{p} has no video track")
    return container


def probe(path: str | os.PathLike, fps: float | Fraction | None = None) -> VideoInfo:
    """Size, frame rate, frame count and audio codec of a video file or a folder of frames.

    ``fps`` is the frame rate given to a folder's frames (default 25); ignored for files.
    """
    p = _check_input(path)
    if p.is_dir():
        files = frame_files(p)
        first = load_image(files[0])
        rate = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FOLDER_FPS
        return VideoInfo(str(p), first.shape[1], first.shape[0], rate, len(files), float(len(files) / rate),
                         files[0].suffix.lower().lstrip("."), None, True)
    av = require("av")
    with _open_input(p) as c:
        vs = c.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        frames = vs.frames or None
        duration = float(vs.duration * vs.time_base) if vs.duration and vs.time_base else (
            c.duration / 1e6 if c.duration else None)
        if frames is None and duration:
            frames = int(round(duration * rate))
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        try:
            rotation = _first_frame_rotation(c, vs)
        except av.error.FFmpegError:
            rotation = 0
        w, h = vs.codec_context.width, vs.codec_context.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(str(p), w, h, Fraction(rate), frames, duration, vs.codec_context.name, audio, False, rotation)


def _decoder_for(stream: Any, alpha: bool) -> Any:
    """A decoder for ``stream``; libvpx for VP9 with an alpha channel when ``alpha`` (see module doc)."""
    av = require("av")

    if alpha and stream.codec_context.name == "vp9" and stream.metadata.get("alpha_mode") == "1":
        try:
            return av.codec.CodecContext.create("libvpx-vp9", "r")
        except av.error.FFmpegError:  # pragma: no cover - PyAV's wheels include libvpx
            return None
    return None


def _decoded(container: Any, stream: Any, alpha: bool) -> Iterator[Any]:
    decoder = _decoder_for(stream, alpha)
    if decoder is None:
        yield from container.decode(stream)
        return
    for packet in container.demux(stream):
        if packet.size:
            yield from decoder.decode(packet)
    yield from decoder.decode(None)


def rotation_of(frame: Any) -> int:
    """The counter-clockwise rotation (0, 90, 180 or 270) a player applies to a decoded frame, from
    its display matrix (a phone video filmed upright is stored sideways with -90)."""
    try:
        degrees = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        degrees = 0.0
    return int(round(degrees / 90.0)) % 4 * 90


def upright(picture: np.ndarray, rotation: int) -> np.ndarray:
    """``picture`` turned as a player shows it: ``rotation`` degrees counter-clockwise (a multiple of 90)."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(picture, k)) if k else picture


def _first_frame_rotation(container: Any, stream: Any) -> int:
    """The rotation of the first decodable frame (the display matrix is frame side data)."""
    for frame in container.decode(stream):
        return rotation_of(frame)
    return 0


def read_frames(path: str | os.PathLike, alpha: bool = False) -> Iterator[np.ndarray]:
    """Yield the frames of a video file or a folder of frames as uint8 (H, W, 3) RGB arrays,
    turned upright as a player shows them (a file's rotation metadata is applied).

    ``alpha=True`` yields (H, W, 4) RGBA instead (opaque where the video has no alpha), reading
    the alpha of VP9 WebM files too.
    """
    p = _check_input(path)
    if p.is_dir():
        for f in frame_files(p):
            rgb = load_image(f)
            if alpha:
                from PIL import Image

                with Image.open(f) as im:
                    yield np.asarray(im.convert("RGBA"))
            else:
                yield rgb
        return
    av = require("av")
    fmt = "rgba" if alpha else "rgb24"
    with _open_input(p) as c:
        try:
            for frame in _decoded(c, c.streams.video[0], alpha):
                yield upright(frame.to_ndarray(format=fmt), rotation_of(frame))
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot decode {p}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# writing


def _even(picture: np.ndarray) -> np.ndarray:
    h, w = picture.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return picture
    return np.pad(picture, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class FrameFolderWriter:
    """PNG frames ``00000.png``, ``00001.png``, ... written into a temporary folder that replaces
    ``folder`` as a whole when :meth:`close` is called (so old frames never mix with new ones,
    and an aborted run leaves ``folder`` as it was)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        self._atomic = atomic_path(folder, directory=True)
        self.tmp = self._atomic.__enter__()
        self.count = 0
        self.codec = "png"
        self.audio_mode = "none"

    def write(self, picture: np.ndarray, pts: Any, time_base: Any) -> None:
        from PIL import Image

        Image.fromarray(picture).save(self.tmp / f"{self.count:05d}.png", compress_level=1)
        self.count += 1

    def close(self) -> None:
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        try:
            raise RuntimeError("aborted")
        except RuntimeError as exc:
            try:
                self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            except RuntimeError:
                pass


class VideoFileWriter:
    """One output container: a video stream (created on the first frame) and maybe an audio stream."""

    def __init__(self, path: Path, fmt: _Format, alpha: bool, rate: Fraction, time_base: Fraction | None,
                 width: int, height: int, audio_in: Any = None) -> None:
        av = require("av")

        self.path = path
        self.tmp = partial_name(path)
        self.container = av.open(str(self.tmp), "w", format=_muxer(path.suffix))
        self.codec = fmt.alpha_video if alpha else fmt.video
        self.pad = self.codec not in ("qtrle", "ffv1", "png")  # 4:2:0 codecs need even sizes
        if self.pad:
            width, height = width + width % 2, height + height % 2
        # the video stream first: the container's header is written at the first packet
        self.video = self.container.add_stream(self.codec, rate=rate)
        self.video.width, self.video.height = width, height
        self.video.pix_fmt = fmt.alpha_pix_fmt if alpha else fmt.pix_fmt
        self.video.options = dict(fmt.alpha_options if alpha else fmt.options)
        if time_base is not None:
            self.video.codec_context.time_base = time_base
        self.audio = None
        self.audio_mode = "none"
        self.audio_copy = False
        if audio_in is not None:
            name = audio_in.codec_context.name
            if name in fmt.audio_copy:
                self.audio = self.container.add_stream_from_template(audio_in)
                self.audio_copy = True
                self.audio_mode = f"copied ({name})"
            else:
                layout = audio_in.codec_context.layout.name if audio_in.codec_context.layout else "stereo"
                rate_a = audio_in.codec_context.sample_rate or 48000
                if fmt.audio_encoder == "libopus" and rate_a not in (8000, 12000, 16000, 24000, 48000):
                    rate_a = 48000
                self.audio = self.container.add_stream(fmt.audio_encoder, rate=rate_a)
                try:
                    self.audio.codec_context.layout = layout
                except (ValueError, TypeError):  # pragma: no cover - unusual layouts
                    pass
                self.audio_mode = f"re-encoded ({name} -> {self.audio.codec_context.name})"

    def write(self, picture: np.ndarray, pts: int | None, time_base: Fraction | None) -> None:
        av = require("av")

        if self.pad:
            picture = _even(picture)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgba" if picture.shape[2] == 4 else "rgb24")
        frame.pts = pts
        if time_base is not None:
            frame.time_base = time_base
        for packet in self.video.encode(frame):
            self.container.mux(packet)

    def audio_packet(self, packet: Any) -> None:
        if self.audio is None or packet.dts is None:
            return
        if self.audio_copy:
            packet.stream = self.audio
            self.container.mux(packet)
        else:
            for frame in packet.decode():
                frame.pts = None  # let the encoder number the resampled frames
                for out in self.audio.encode(frame):
                    self.container.mux(out)

    def close(self) -> None:
        for packet in self.video.encode():
            self.container.mux(packet)
        if self.audio is not None and not self.audio_copy:
            for packet in self.audio.encode():
                self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - best effort: the partial file goes anyway
            pass
        self.tmp.unlink(missing_ok=True)


def _muxer(suffix: str) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}[suffix]


def output_format(output: Path, alpha: bool) -> _Format | None:
    """The format for ``output`` (None: a folder of PNG frames); raises for what cannot work."""
    suffix = output.suffix.lower()
    if not suffix:
        return None
    if suffix not in FORMATS:
        raise VideoError(f"{output.name}: cannot write {suffix} video; use {_suffix_list()}")
    fmt = FORMATS[suffix]
    if alpha and fmt.alpha_video is None:
        raise VideoError(
            f"{output.name}: {suffix} video cannot be transparent, so the cutout effect cannot be written to it; "
            "use .webm (VP9 with alpha), .mov (QuickTime Animation), .mkv (FFV1) or a folder of PNG frames, "
            "or pick another effect (e.g. --effect replace)"
        )
    return fmt


