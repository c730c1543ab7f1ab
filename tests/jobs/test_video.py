"""bgkit.io.video and bgkit.jobs.video: video files in and out with PyAV (frame rate, frame count, audio, alpha), and ``bgkit video``."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

import bgkit
from bgkit import cli
from bgkit import EffectSettings
from conftest import scripted_segmenter
from bgkit.io.video import VideoError, probe, read_frames
from bgkit.jobs.video import process_video

W, H, FPS, N = 96, 64, 24, 24


def _ellipse(i: int, h: int, w: int, blink: bool) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((yy - h / 2) / (h * 0.35)) ** 2 + ((xx - w / 2) / (w * 0.25)) ** 2
    p = np.clip(1.5 - d, 0, 1).astype(np.float32)
    if blink:
        p[2:8, 2:10] = 0.8 if i % 2 else 0.6
    return p


def Ellipse(blink: bool = False, fail_at: int | None = None):  # noqa: N802 - reads like the model it stands for
    """A scripted model (fast): an ellipse 'person'; ``blink`` makes a corner blob flicker;
    ``fail_at`` makes that call raise."""

    def maps(i, h, w):
        if i == fail_at:
            raise RuntimeError("model failed")
        return _ellipse(i, h, w, blink)

    return scripted_segmenter(maps, name="ellipse")


def _frame(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 40 + 4 * i
    img[..., 1] = np.linspace(0, 200, W, dtype=np.uint8)[None]
    img[20:44, 30 + i:60 + i] = (230, 220, 200)
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 1 s test clip: 96x64 H.264 at 24 fps, with a 1 s AAC sine tone (44.1 kHz stereo)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        a = out.add_stream("aac", rate=44100)
        a.codec_context.layout = "stereo"
        t = np.arange(44100) / 44100.0
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([tone, tone])
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(_frame(i), format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                out.mux(p)
        for start in range(0, 44100, 1024):
            chunk = np.ascontiguousarray(samples[:, start:start + 1024])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate = 44100
            af.pts = start
            for p in a.encode(af):
                out.mux(p)
        for s in (vs, a):
            for p in s.encode():
                out.mux(p)
    return path


def _streams(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"fps": v.average_rate, "video": v.codec_context.name, "frames": sum(1 for _ in c.decode(v))}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            samples = sum(f.samples for f in c.decode(a))
            info.update(audio=a.codec_context.name, audio_s=samples / a.codec_context.sample_rate)
        else:
            info.update(audio=None, audio_s=0.0)
    return info


def test_probe(clip):
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.frames) == (W, H, Fraction(FPS), N)
    assert info.codec == "h264" and info.audio_codec == "aac" and info.has_audio and not info.is_folder


def test_round_trip_keeps_fps_frame_count_and_audio(clip, tmp_path):
    out = tmp_path / "out.mp4"
    summary = process_video(clip, out, Ellipse(), EffectSettings(effect="replace", background=(0, 255, 0, 255)),
                            progress=False)
    s = _streams(out)
    assert s["fps"] == FPS and s["frames"] == N and s["video"] == "h264"
    assert s["audio"] == "aac" and s["audio_s"] == pytest.approx(1.0, abs=0.05)
    assert summary.frames == N and summary.fps == FPS and summary.audio == "copied (aac)"
    assert summary.temporal_smoothing and summary.refine_edges  # on by default for video
    assert (summary.width, summary.height) == (W, H) and "24 frames" in str(summary)
    first = next(read_frames(out))
    assert first.shape == (H, W, 3)
    assert (np.abs(first[2, 2].astype(int) - (0, 255, 0)) < 40).all()  # background replaced by green
    assert not list(tmp_path.glob(".*partial*"))


def test_cutout_webm_has_alpha_and_reencoded_audio(clip, tmp_path):
    out = tmp_path / "cut.webm"
    summary = process_video(clip, out, Ellipse(), EffectSettings(effect="cutout"), progress=False)
    assert summary.video_codec == "libvpx-vp9" and summary.audio.startswith("re-encoded (aac -> ")
    s = _streams(out)
    assert s["fps"] == FPS and s["frames"] == N and s["audio"] == "opus"
    assert s["audio_s"] == pytest.approx(1.0, abs=0.08)
    frames = list(read_frames(out, alpha=True))
    assert len(frames) == N and frames[0].shape == (H, W, 4)
    a = frames[5][..., 3]
    assert a[H // 2, W // 2] > 240 and a[1, 1] < 15  # person opaque, background transparent
    rgb = list(read_frames(out))  # FFmpeg's own VP9 decoder: the colours, no alpha
    assert rgb[0].shape == (H, W, 3)


@pytest.mark.parametrize("suffix, codec", [(".mov", "qtrle"), (".mkv", "ffv1")])
def test_cutout_lossless_containers_keep_alpha_exactly(clip, tmp_path, suffix, codec):
    out = tmp_path / f"cut{suffix}"
    seg = Ellipse()
    summary = process_video(clip, out, seg, EffectSettings(effect="cutout", edge_blur_amount=0, refine_edges=False,
                                                           edge_softness=0), progress=False, max_frames=6)
    assert summary.video_codec == codec and summary.frames == 6
    frames = list(read_frames(out, alpha=True))
    assert len(frames) == 6
    expected = (_ellipse(0, H, W, False) > 0.7) * 255
    np.testing.assert_array_equal(frames[0][..., 3], expected)
    s = _streams(out)
    assert s["audio"] == "aac" and s["fps"] == FPS


def test_smoothing_is_on_for_video_and_can_be_turned_off(clip, tmp_path):
    base = EffectSettings(effect="cutout", edge_blur_amount=0, refine_edges=False, edge_softness=0)
    smooth, raw = tmp_path / "smooth.mov", tmp_path / "raw.mov"
    process_video(clip, smooth, Ellipse(blink=True), base, progress=False, max_frames=8, audio=False)
    process_video(clip, raw, Ellipse(blink=True), base.updated(temporal_smoothing=False), progress=False,
                  max_frames=8, audio=False)
    steady = [f[..., 3] for f in read_frames(smooth, alpha=True)]
    blinking = [f[..., 3] for f in read_frames(raw, alpha=True)]
    assert all(np.array_equal(steady[0], a) for a in steady)
    assert not np.array_equal(blinking[0], blinking[1])
    assert _streams(raw)["audio"] is None


def test_folders_of_frames_in_and_out(clip, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(7):
        Image.fromarray(_frame(i)).save(frames / f"{i:05d}.jpg")
    Image.fromarray(_frame(9)).save(frames / "00010.jpg")  # numeric order, not name order
    out = tmp_path / "from_frames.mp4"
    summary = process_video(frames, out, Ellipse(), EffectSettings(effect="bokeh"), fps=12, progress=False)
    s = _streams(out)
    assert summary.frames == 8 and s["frames"] == 8 and s["fps"] == 12 and s["audio"] is None
    assert probe(frames, fps=12).frames == 8

    pngs = tmp_path / "pngs"
    summary = process_video(clip, pngs, Ellipse(), EffectSettings(effect="cutout"), progress=False, max_frames=4)
    files = sorted(pngs.glob("*.png"))
    assert [f.name for f in files] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    with Image.open(files[0]) as im:
        assert im.mode == "RGBA" and im.size == (W, H)
    assert "dropped" in summary.audio


def test_clear_errors(clip, tmp_path):
    with pytest.raises(VideoError, match=r"\.mp4 video cannot be transparent.*\.webm"):
        process_video(clip, tmp_path / "x.mp4", Ellipse(), EffectSettings(effect="cutout"), progress=False)
    with pytest.raises(VideoError, match="cannot write .avi"):
        process_video(clip, tmp_path / "x.avi", Ellipse(), progress=False)
    with pytest.raises(FileNotFoundError, match="no such video"):
        process_video(tmp_path / "missing.mp4", tmp_path / "x.mp4", Ellipse(), progress=False)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match="cannot read"):
        process_video(junk, tmp_path / "y.mp4", Ellipse(), progress=False)
    with pytest.raises(bgkit.OutputError, match="is the input"):
        process_video(clip, clip, Ellipse(), progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="no image frames"):
        process_video(empty, tmp_path / "z.mp4", Ellipse(), progress=False)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()

    with pytest.raises(RuntimeError, match="model failed"):
        process_video(clip, tmp_path / "broken.mp4", Ellipse(fail_at=3), progress=False)
    assert not list(tmp_path.glob("*broken*")) and not list(tmp_path.glob(".*partial*"))  # nothing half-written


def test_progress_bar_goes_to_stderr_and_can_be_turned_off(clip, tmp_path, capsys):
    process_video(clip, tmp_path / "p.mp4", Ellipse(), progress=True, max_frames=5, audio=False)
    captured = capsys.readouterr()
    assert "frame" in captured.err and captured.out == ""
    process_video(clip, tmp_path / "q.mp4", Ellipse(), progress=False, max_frames=5, audio=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_cli_video(clip, tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    rc = cli.main(["video", str(clip), str(out), "--model", "selfie", "--effect", "bokeh", "--max-frames", "4",
                   "-q", "--hysteresis", "0.4", "--ema", "0.8"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert str(out) in captured.out and "4 frames" in captured.out and "smoothing" in captured.out
    assert _streams(out)["frames"] == 4
    rc = cli.main(["video", str(clip), str(tmp_path / "c.mp4"), "--effect", "cutout", "--model", "selfie", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be transparent" in err and ".webm" in err
    rc = cli.main(["video", str(tmp_path / "nope.mp4"), str(tmp_path / "d.mp4"), "-q"])
    assert rc == 2 and "no such video file" in capsys.readouterr().err
    rc = cli.main(["video", str(clip), str(tmp_path / "e.mp4"), "--no-smoothing", "--no-refine", "--no-audio",
                   "--model", "selfie", "--max-frames", "2", "-q"])
    captured = capsys.readouterr()
    assert rc == 0 and "raw masks" in captured.out and "audio dropped" in captured.out


@pytest.mark.slow
def test_real_talking_head_keeps_30_fps_and_its_sound(data_dir, tmp_path):
    src = data_dir / "video" / "talking_head_tfjs_facemesh.mp4"
    out = tmp_path / "talk.mp4"
    seg = bgkit.load_segmenter("selfie", device="cpu")
    summary = process_video(src, out, seg, EffectSettings(effect="bokeh"), progress=False, max_frames=10)
    s = _streams(out)
    assert s["fps"] == 30 and s["frames"] == 10 and s["audio"] == "aac"
    assert 0.3 <= s["audio_s"] <= 0.6  # the sound of those 10 frames (1/3 s), give or take a packet
    assert (summary.width, summary.height) == (1080, 720) and summary.audio == "copied (aac)"
