"""A whole video through the pipeline: read, draw every frame, write -- keeping the frame rate and the sound.

:func:`process_video` reads a video file (anything FFmpeg reads) or a folder of numbered frames,
runs every frame through one :class:`bgkit.Stream` of a :class:`bgkit.Pipeline` (segmentation,
edge refinement and -- on by default for video -- temporal smoothing, then the effect), and
writes the result (see :mod:`bgkit.io.video` for the formats)::

    import bgkit

    pipe = bgkit.Pipeline(bgkit.load_segmenter("selfie"), effect="bokeh")
    summary = bgkit.process_video("talk.mp4", "talk_bokeh.mp4", pipe)
    print(summary)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..core.deps import require
from ..pipeline.settings import EffectSettings
from ..io.images import load_image
from ..io.outputs import check_output
from ..io.video import (FrameFolderWriter, VideoError, VideoFileWriter, _check_input, _open_input, frame_files,
                        output_format, probe, rotation_of, upright)
from ..models.segmenter import Segmenter
from ..pipeline import Pipeline

__all__ = ["VideoSummary", "process_video"]


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


def _pipeline(pipeline: Pipeline | Segmenter, settings: EffectSettings | None) -> Pipeline:
    if isinstance(pipeline, Pipeline):
        if settings is not None:
            return Pipeline(pipeline.segmenter, settings)
        return pipeline
    return Pipeline(pipeline, settings)


def process_video(
    input: str | os.PathLike,
    output: str | os.PathLike,
    pipeline: Pipeline | Segmenter,
    settings: EffectSettings | None = None,
    *,
    audio: bool = True,
    progress: bool = True,
    fps: float | Fraction | None = None,
    max_frames: int | None = None,
    overwrite: bool = False,
) -> VideoSummary:
    """Apply an effect to every frame of a video and write the result.

    Args:
        input: a video file, or a folder of numbered image frames (all of one size). A file's
            rotation metadata (phone videos) is applied: frames are processed and written upright,
            as a player shows them.
        output: the file to write (its suffix picks the format; see :mod:`bgkit.io.video`), or a
            folder (no suffix) for PNG frames. Written under a temporary name and moved into place
            when complete: a failed or interrupted run leaves no half-written file, and a
            folder's old frames never mix with the new ones.
        pipeline: a :class:`bgkit.Pipeline` (or a :class:`bgkit.Segmenter`, drawn with ``settings``).
        settings: :class:`bgkit.EffectSettings` to use instead of the pipeline's.
        audio: keep the input's audio track (copied, or re-encoded where the output container
            does not take its codec). False drops it.
        progress: show a progress bar on stderr.
        fps: frame rate for a folder of frames (default 25); a file keeps its own timing.
        max_frames: stop after this many frames (the audio stops there too).
        overwrite: replace an existing ``output``; otherwise an existing one is an error.

    Returns:
        A :class:`VideoSummary`.

    Raises:
        FileNotFoundError: ``input`` does not exist.
        bgkit.VideoError: ``input`` is not a readable video, or ``output`` cannot hold what is
            asked (e.g. the cutout effect into .mp4).
        bgkit.OutputError: ``output`` is the input, exists (without ``overwrite``), or cannot be
            written -- checked before any frame is processed.
    """
    av = require("av")
    pipe = _pipeline(pipeline, settings)
    s = pipe.settings
    src = _check_input(input)
    dst = Path(output).expanduser()
    alpha = s.effect == "cutout"
    fmt = output_format(dst, alpha)
    check_output(dst, inputs=(src,), overwrite=overwrite, directory=fmt is None)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1; got {max_frames}")
    info = probe(src, fps=fps)
    stream = pipe.stream()
    total = info.frames if max_frames is None else min(max_frames, info.frames or max_frames)
    tqdm = require("tqdm.auto", "a progress bar").tqdm
    bar = tqdm(total=total, unit="frame", desc=src.name, file=sys.stderr, disable=not progress, leave=False)
    t0 = time.perf_counter()
    count = 0
    container = None
    writer: Any = None
    try:
        if info.is_folder:
            writer = FrameFolderWriter(dst) if fmt is None else VideoFileWriter(
                dst, fmt, alpha, info.fps, 1 / info.fps, info.width, info.height)
            for i, f in enumerate(frame_files(src)):
                if max_frames is not None and count >= max_frames:
                    break
                rgb = load_image(f)
                if rgb.shape[:2] != (info.height, info.width):
                    raise VideoError(f"{f.name}: frame is {rgb.shape[1]}x{rgb.shape[0]} but the first frame is "
                                     f"{info.width}x{info.height}; a video's frames share one size")
                writer.write(stream.process(rgb).picture, i, 1 / info.fps)
                count += 1
                bar.update(1)
        else:
            container = _open_input(src)
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            audio_in = container.streams.audio[0] if (audio and container.streams.audio and fmt is not None) else None
            writer = (FrameFolderWriter(dst) if fmt is None
                      else VideoFileWriter(dst, fmt, alpha, Fraction(info.fps), vs.time_base, info.width, info.height,
                                           audio_in))
            streams = [vs] + ([audio_in] if audio_in is not None else [])
            done = False
            for packet in container.demux(*streams):
                if packet.stream is audio_in:
                    writer.audio_packet(packet)
                    continue
                for frame in packet.decode():
                    rgb = upright(frame.to_ndarray(format="rgb24"), rotation_of(frame))  # as the viewer saw it
                    picture = stream.process(rgb).picture
                    if frame.pts is None:  # unusual: number the frames at the nominal rate
                        writer.write(picture, count, 1 / Fraction(info.fps))
                    else:
                        writer.write(picture, frame.pts, frame.time_base)
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
    audio_mode = writer.audio_mode
    if info.has_audio and not audio:
        audio_mode = "dropped"
    elif info.has_audio and fmt is None:
        audio_mode = "dropped (PNG frames have no sound)"
    return VideoSummary(
        input=str(src), output=str(dst), frames=count, width=info.width, height=info.height, fps=float(info.fps),
        effect=s.effect, video_codec=writer.codec, audio=audio_mode, temporal_smoothing=s.temporal_smoothing,
        refine_edges=s.refine_edges, seconds=seconds, ms_per_frame=1000.0 * seconds / max(count, 1),
    )

