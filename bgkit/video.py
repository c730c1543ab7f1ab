"""Video files: read, apply an effect frame by frame, write -- keeping the frame rate and the sound.

:func:`process_video` reads a video file (anything FFmpeg reads) or a folder of numbered frames,
runs every frame through one :class:`bgkit.pipeline.FrameProcessor` (segmentation, edge
refinement and -- on by default for video -- temporal smoothing, then the effect), and writes
the result with PyAV (FFmpeg's libraries; no ``ffmpeg`` program needed)::

    import bgkit
    from bgkit.video import process_video

    seg = bgkit.load_segmenter("selfie")
    summary = process_video("talk.mp4", "talk_bokeh.mp4", seg, bgkit.EffectSettings(effect="bokeh"))
    print(summary)

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

from .imageio import load_image, save_image
from .pipeline import EffectSettings, FrameProcessor

__all__ = [
    "FORMATS",
    "VideoError",
    "VideoInfo",
    "VideoSummary",
    "probe",
    "process_video",
    "read_frames",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
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

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


_NUMBERED = re.compile(r"^(\D*)(\d+)$")


def _frame_files(folder: Path) -> list[Path]:
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
    import av

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
        files = _frame_files(p)
        first = load_image(files[0])
        rate = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FOLDER_FPS
        return VideoInfo(str(p), first.shape[1], first.shape[0], rate, len(files), float(len(files) / rate),
                         files[0].suffix.lower().lstrip("."), None, True)
    with _open_input(p) as c:
        vs = c.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        frames = vs.frames or None
        duration = float(vs.duration * vs.time_base) if vs.duration and vs.time_base else (
            c.duration / 1e6 if c.duration else None)
        if frames is None and duration:
            frames = int(round(duration * rate))
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        return VideoInfo(str(p), vs.codec_context.width, vs.codec_context.height, Fraction(rate), frames, duration,
                         vs.codec_context.name, audio, False)


def _decoder_for(stream: Any, alpha: bool) -> Any:
    """A decoder for ``stream``; libvpx for VP9 with an alpha channel when ``alpha`` (see module doc)."""
    import av

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


def read_frames(path: str | os.PathLike, alpha: bool = False) -> Iterator[np.ndarray]:
    """Yield the frames of a video file or a folder of frames as uint8 (H, W, 3) RGB arrays.

    ``alpha=True`` yields (H, W, 4) RGBA instead (opaque where the video has no alpha), reading
    the alpha of VP9 WebM files too.
    """
    import av

    p = _check_input(path)
    if p.is_dir():
        for f in _frame_files(p):
            rgb = load_image(f)
            if alpha:
                from PIL import Image

                with Image.open(f) as im:
                    yield np.asarray(im.convert("RGBA"))
            else:
                yield rgb
        return
    fmt = "rgba" if alpha else "rgb24"
    with _open_input(p) as c:
        try:
            for frame in _decoded(c, c.streams.video[0], alpha):
                yield frame.to_ndarray(format=fmt)
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot decode {p}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# writing


@dataclass
class VideoSummary:
    """What :func:`process_video` did."""

    input: str
    output: str
    frames: int
    width: int
    height: int
    fps: float
    effect: str
    video_codec: str
    audio: str  # "copied (aac)", "re-encoded (opus -> aac)", "none", "dropped"
    temporal_smoothing: bool
    refine_edges: bool
    seconds: float
    ms_per_frame: float

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        extras = [x for x, on in (("smoothing", self.temporal_smoothing), ("edge refinement", self.refine_edges)) if on]
        return (f"{self.output}: {self.frames} frames {self.width}x{self.height} at {self.fps:g} fps, "
                f"{self.effect} ({', '.join(extras) or 'raw masks'}), video {self.video_codec}, audio {self.audio}; "
                f"{self.seconds:.1f} s, {self.ms_per_frame:.0f} ms/frame")


def _even(picture: np.ndarray) -> np.ndarray:
    h, w = picture.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return picture
    return np.pad(picture, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class _FolderWriter:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.count = 0
        self.codec = "png"

    def write(self, picture: np.ndarray, pts: Any, time_base: Any) -> None:
        save_image(picture, self.folder / f"{self.count:05d}.png")
        self.count += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _FileWriter:
    """One output container: a video stream (created on the first frame) and maybe an audio stream."""

    def __init__(self, path: Path, fmt: _Format, alpha: bool, rate: Fraction, time_base: Fraction | None,
                 width: int, height: int, audio_in: Any = None) -> None:
        import av

        self.path = path
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
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
        import av

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


def _output_kind(output: Path, alpha: bool) -> _Format | None:
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


def process_video(
    input: str | os.PathLike,
    output: str | os.PathLike,
    segmenter: Any,
    settings: EffectSettings | None = None,
    *,
    audio: bool = True,
    progress: bool = True,
    fps: float | Fraction | None = None,
    max_frames: int | None = None,
) -> VideoSummary:
    """Apply an effect to every frame of a video and write the result.

    Args:
        input: a video file, or a folder of numbered image frames.
        output: the file to write (its suffix picks the format; see the module docstring), or a
            folder (no suffix) for PNG frames. Written to a temporary name first: a failed run
            leaves no half-written file.
        segmenter: a loaded :class:`bgkit.Segmenter`.
        settings: :class:`bgkit.EffectSettings` (default ``EffectSettings()``); its
            ``temporal_smoothing`` is on by default, and applies here.
        audio: keep the input's audio track (copied, or re-encoded where the output container
            does not take its codec). False drops it.
        progress: show a tqdm progress bar on stderr.
        fps: frame rate for a folder of frames (default 25); a file keeps its own timing.
        max_frames: stop after this many frames (the audio stops there too).

    Returns:
        A :class:`VideoSummary`.

    Raises:
        FileNotFoundError: ``input`` does not exist.
        bgkit.video.VideoError: ``input`` is not a readable video, or ``output`` cannot hold
            what is asked (e.g. the cutout effect into .mp4).
    """
    import av

    settings = settings if settings is not None else EffectSettings()
    src = _check_input(input)
    dst = Path(output)
    if dst.resolve() == src.resolve():
        raise VideoError(f"the output {dst} is the input; write somewhere else")
    alpha = settings.effect == "cutout"
    fmt = _output_kind(dst, alpha)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1; got {max_frames}")
    info = probe(src, fps=fps)
    if dst.suffix:
        dst.parent.mkdir(parents=True, exist_ok=True)

    processor = FrameProcessor(segmenter, settings)
    total = info.frames if max_frames is None else min(max_frames, info.frames or max_frames)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="frame", desc=src.name, file=sys.stderr, disable=not progress, leave=False)
    t0 = time.perf_counter()
    count = 0
    container = None
    writer: Any = None
    try:
        if info.is_folder:
            writer = _FolderWriter(dst) if fmt is None else _FileWriter(dst, fmt, alpha, info.fps, 1 / info.fps,
                                                                                 info.width, info.height)
            for i, f in enumerate(_frame_files(src)):
                if max_frames is not None and count >= max_frames:
                    break
                out, _ = processor.process(load_image(f))
                writer.write(out, i, 1 / info.fps)
                count += 1
                bar.update(1)
        else:
            container = _open_input(src)
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            audio_in = container.streams.audio[0] if (audio and container.streams.audio and fmt is not None) else None
            writer = (_FolderWriter(dst) if fmt is None
                      else _FileWriter(dst, fmt, alpha, Fraction(info.fps), vs.time_base, info.width, info.height,
                                       audio_in))
            streams = [vs] + ([audio_in] if audio_in is not None else [])
            done = False
            for packet in container.demux(*streams):
                if packet.stream is audio_in:
                    writer.audio_packet(packet)
                    continue
                for frame in packet.decode():
                    out, _ = processor.process(frame.to_ndarray(format="rgb24"))
                    if frame.pts is None:  # unusual: number the frames at the nominal rate
                        writer.write(out, count, 1 / Fraction(info.fps))
                    else:
                        writer.write(out, frame.pts, frame.time_base)
                    count += 1
                    bar.update(1)
                    if max_frames is not None and count >= max_frames:
                        done = True
                        break
                if done:
                    break
        if count == 0:
            raise VideoError(f"{src}: no frame could be decoded")
        writer.close()
    except av.error.FFmpegError as exc:
        if writer is not None:
            writer.abort()
        raise VideoError(f"{src} -> {dst}: {exc}") from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
        if container is not None:
            container.close()
    seconds = time.perf_counter() - t0
    audio_mode = writer.audio_mode if isinstance(writer, _FileWriter) else "none"
    if info.has_audio and not audio:
        audio_mode = "dropped"
    elif info.has_audio and fmt is None:
        audio_mode = "dropped (PNG frames have no sound)"
    h, w = info.height, info.width
    return VideoSummary(
        input=str(src), output=str(dst), frames=count, width=w, height=h, fps=float(info.fps),
        effect=settings.effect, video_codec=writer.codec, audio=audio_mode,
        temporal_smoothing=settings.temporal_smoothing, refine_edges=settings.refine_edges,
        seconds=seconds, ms_per_frame=1000.0 * seconds / max(count, 1),
    )
