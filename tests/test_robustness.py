"""Regression cases from the hostile-user review (issue 12): one test per finding.

Silently wrong pictures, data loss, crashes instead of errors, and trust in caches.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bgkit
import bgkit.io.images
import bgkit.io.video
from bgkit.cli import main
from bgkit.io.sample import sample_image, sample_image_path

REPO = Path(__file__).resolve().parents[1]


def _phone_photo(path: Path) -> np.ndarray:
    """The sample stored sideways with EXIF orientation 6 (rotate 90 clockwise to view): returns the
    picture as a viewer shows it."""
    upright = np.asarray(Image.fromarray(sample_image()).resize((320, 512)))  # portrait, as seen
    stored = np.rot90(upright, 1)  # the camera's sensor orientation: landscape
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, quality=95)
    return upright


# -- silently wrong pictures ----------------------------------------------------------------------


def test_exif_orientation_is_honoured(tmp_path, selfie):
    path = tmp_path / "phone.jpg"
    upright = _phone_photo(path)
    rgb = bgkit.load_image(path)
    assert rgb.shape == (512, 320, 3)
    assert np.abs(rgb.astype(int) - upright.astype(int)).mean() < 6  # JPEG noise only
    assert bgkit.io.images.image_size(path) == (320, 512)
    out = tmp_path / "out.png"
    assert main(["effect", str(path), "-o", str(out), "--model", "selfie", "--effect", "cutout"]) == 0
    assert Image.open(out).size == (320, 512)  # saved the way the viewer saw it


def test_video_rotation_metadata_is_honoured(tmp_path, selfie):
    stored = np.ascontiguousarray(np.rot90(np.asarray(Image.fromarray(sample_image()).resize((96, 128))), 1))
    # shown turned 90 degrees clockwise, like a phone's portrait video
    src = _write_clip(tmp_path / "phone.mp4", stored, frames=3, rate=10, rotation=-90)
    info = bgkit.io.video.probe(src)
    assert (info.width, info.height, info.rotation) == (96, 128, 270)  # portrait, as displayed
    first = next(bgkit.io.video.read_frames(src))
    assert first.shape == (128, 96, 3)
    dst = tmp_path / "out.mp4"
    summary = bgkit.process_video(src, dst, bgkit.Pipeline(selfie, effect="replace"), progress=False)
    assert (summary.width, summary.height) == (96, 128)
    back = bgkit.io.video.probe(dst)
    assert (back.width, back.height, back.rotation) == (96, 128, 0)  # written upright: plays upright anywhere


@pytest.mark.parametrize("kind", ["0/1", "palette", "0/255"])
def test_evaluate_reads_01_palette_and_0_255_masks(tmp_path, kind, selfie):
    images, masks = tmp_path / "i", tmp_path / "m"
    images.mkdir(), masks.mkdir()
    truth = np.zeros((96, 96), bool)
    truth[20:90, 30:70] = True
    Image.fromarray(np.asarray(Image.fromarray(sample_image()).resize((96, 96)))).save(images / "a.png")
    if kind == "0/1":
        Image.fromarray(truth.astype(np.uint8)).save(masks / "a.png")
    elif kind == "palette":
        m = Image.fromarray(truth.astype(np.uint8) * 2, mode="L").convert("P")
        m.putpalette([0, 0, 0, 0, 0, 0, 200, 0, 0] + [0] * 759)
        m.save(masks / "a.png")
    else:
        Image.fromarray(truth.astype(np.uint8) * 255).save(masks / "a.png")
    from bgkit.eval.evaluate import load_mask

    np.testing.assert_array_equal(load_mask(masks / "a.png"), truth)


def test_numbered_photos_are_photos_and_mixed_sizes_say_so(tmp_path, selfie):
    from bgkit.eval.evaluate import evaluate

    images, masks = tmp_path / "i", tmp_path / "m"
    images.mkdir(), masks.mkdir()
    for i, size in enumerate([(64, 48), (64, 48), (40, 56)]):
        Image.fromarray(np.asarray(Image.fromarray(sample_image()).resize(size))).save(images / f"IMG_{i:04d}.png")
        Image.new("L", size, 255).save(masks / f"IMG_{i:04d}.png")
    assert evaluate(images, masks, selfie).kind == "images"  # camera names are not video frames
    with pytest.raises(ValueError, match="share one size.*--photos"):
        evaluate(images, masks, selfie, video=True)


def test_a_cutout_saved_as_bmp_is_refused(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(bgkit.ImageError, match=r"bmp has no transparency.*\.png"):
        bgkit.save_image(rgba, tmp_path / "cut.bmp")
    assert not list(tmp_path.iterdir())


def test_a_frame_of_another_size_in_a_folder_is_an_error(tmp_path, selfie):
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(frames / "00000.png")
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(frames / "00001.png")
    with pytest.raises(bgkit.VideoError, match="00001.png: frame is 64x40 but the first frame is 64x48"):
        bgkit.process_video(frames, tmp_path / "out.mp4", selfie, progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_an_hwc_tensor_is_not_read_as_chw():
    with pytest.raises(bgkit.ImageError, match=r"could be \(C, H, W\) or \(H, W, C\).*permute"):
        bgkit.load_image(torch.zeros(3, 40, 3, dtype=torch.uint8))
    assert bgkit.load_image(torch.zeros(3, 40, 50, dtype=torch.uint8)).shape == (40, 50, 3)


# -- data loss ---------------------------------------------------------------------------------------


def test_the_input_is_never_the_output(tmp_path, capsys):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(sample_image_path().read_bytes())
    before = photo.read_bytes()
    assert main(["effect", str(photo), "-o", str(photo), "--model", "selfie"]) == 2
    assert "the output is the input" in capsys.readouterr().err and photo.read_bytes() == before


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"mine")
    assert main(["effect", str(sample_image_path()), "-o", str(out), "--model", "selfie"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main(["effect", str(sample_image_path()), "-o", str(out), "--model", "selfie", "--overwrite"]) == 0
    assert Image.open(out).size == (512, 512)


def test_a_frame_folder_output_never_mixes_old_and_new_frames(tmp_path, selfie):
    frames = tmp_path / "in"
    frames.mkdir()
    for i in range(2):
        Image.fromarray(np.asarray(Image.fromarray(sample_image()).resize((64, 48)))).save(frames / f"{i:05d}.png")
    out = tmp_path / "out"
    out.mkdir()
    for i in range(5):
        (out / f"{i:05d}.png").write_bytes(b"old")
    with pytest.raises(bgkit.OutputError, match="already exists"):
        bgkit.process_video(frames, out, selfie, progress=False)
    bgkit.process_video(frames, out, selfie, progress=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png"]


def _write_clip(path: Path, picture: np.ndarray, frames: int, rate: int = 25, rotation: int | None = None) -> Path:
    """An H.264 clip of ``frames`` copies of ``picture`` (H, W, 3 uint8), with display ``rotation``."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = picture.shape[1], picture.shape[0], "yuv420p"
        if rotation is not None:
            vs.set_display_rotation(rotation)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(picture, format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def _clip(tmp_path: Path, frames: int = 150) -> Path:
    return _write_clip(tmp_path / "long.mp4", np.asarray(Image.fromarray(sample_image()).resize((128, 96))), frames)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_video_leaves_nothing_behind_and_says_one_line(tmp_path, sig):
    src = _clip(tmp_path, frames=1500)  # a minute of video: still running when the signal comes, on any machine
    dst = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "bgkit", "video", str(src), str(dst), "--model", "selfie",
                             "--backend", "eager", "--no-progress"], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            # a shell's background job (and a pytest-xdist worker) ignores SIGINT, and the child
                            # would inherit that: give it the default, as a terminal's Ctrl-C finds it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.partial.mp4")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(tmp_path.glob(".out.*.partial.mp4")), "the run never started writing"
    time.sleep(0.5)
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not dst.exists() and not list(tmp_path.glob(".out*"))


# -- crashes instead of errors -------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["directory", "under-a-file", "demo-out-is-a-file", "figures-out-is-a-file"])
def test_write_problems_are_one_line_errors_before_any_work(tmp_path, case, capsys):
    photo = str(sample_image_path())
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "out.png").mkdir()
    argv = {
        "directory": ["effect", photo, "-o", str(tmp_path / "out.png"), "--model", "selfie"],
        "under-a-file": ["effect", photo, "-o", str(tmp_path / "a-file" / "out.png"), "--model", "selfie"],
        "demo-out-is-a-file": ["demo", "--out", str(tmp_path / "a-file"), "--model", "selfie"],
        "figures-out-is-a-file": ["figures", photo, "-o", str(tmp_path / "a-file"), "--models", "selfie"],
    }[case]
    t0 = time.perf_counter()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and ("a-file" in err or "out.png" in err)
    assert time.perf_counter() - t0 < 30


def test_a_failing_write_reports_the_real_error_and_cleans_up(tmp_path, monkeypatch, capsys):
    import bgkit.io.outputs as outputs

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(outputs.os, "replace", refuse)
    out = tmp_path / "out.png"
    assert main(["effect", str(sample_image_path()), "-o", str(out), "--model", "selfie"]) == 1
    err = capsys.readouterr().err
    assert "Permission denied" in err and str(out) in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_a_file_that_is_not_a_tflite_model_is_refused_up_front(tmp_path):
    junk = tmp_path / "model.tflite"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(bgkit.WeightsUnavailableError, match="is not a TensorFlow Lite model"):
        bgkit.load_segmenter("selfie", weights=junk, device="cpu")
    pth = tmp_path / "w.pth"
    torch.save({"x": torch.zeros(1)}, pth)
    with pytest.raises(bgkit.WeightsUnavailableError, match="it looks like a PyTorch weights file"):
        bgkit.load_segmenter("selfie", weights=pth, device="cpu")


def test_auto_follows_the_weights_file(monkeypatch):
    from bgkit.models.downloads import selfie_model_path

    monkeypatch.delenv("BGKIT_DEEPLABV3_WEIGHTS", raising=False)
    seg = bgkit.load_segmenter("auto", weights=str(selfie_model_path("general")), device="cpu", backend="eager")
    assert seg.name == "selfie"


def test_a_url_is_refused_with_a_clear_message():
    with pytest.raises(bgkit.ImageError, match=r"'https://example.com/a.jpg' is a URL; bgkit reads local files only"):
        bgkit.load_image("https://example.com/a.jpg")


# -- trust and process state ----------------------------------------------------------------------------


def test_loading_weights_changes_nothing_process_wide(tmp_path):
    code = ("import socket, bgkit\n"
            "try:\n    bgkit.load_segmenter('deeplabv3', device='cpu')\nexcept bgkit.WeightsUnavailableError:\n    pass\n"
            "print(socket.getdefaulttimeout())")
    env = {**os.environ, "TORCH_HOME": str(tmp_path), "BGKIT_OFFLINE": "1"}
    env.pop("BGKIT_DEEPLABV3_WEIGHTS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "None", out.stderr
    assert socket.getdefaulttimeout() is None


def test_a_cached_export_is_checked_by_its_recorded_hash(tmp_path, monkeypatch):
    from bgkit.models import backends

    monkeypatch.setenv("BGKIT_ONNX_CACHE_DIR", str(tmp_path))
    seg = bgkit.load_segmenter("selfie", device="cpu", backend="onnxruntime")
    path = seg._run.onnx_file
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert len(record["sha256"]) == 64 and backends.verified_export(path)
    path.write_bytes(path.read_bytes()[:-10])
    assert not backends.verified_export(path)


def test_a_huge_photo_is_refused_with_the_limit_and_the_setting(selfie, monkeypatch):
    big = np.zeros((3000, 4000, 3), np.uint8)
    with pytest.raises(bgkit.MemoryBudgetError, match=r"4000x3000 \(12.0 MP\), above the limit of 10 MP.*max_pixels"):
        bgkit.Pipeline(selfie, max_pixels=10_000_000).process(big)
    monkeypatch.setenv("BGKIT_MAX_PIXELS", "5000000")
    with pytest.raises(bgkit.MemoryBudgetError, match="BGKIT_MAX_PIXELS"):
        bgkit.Pipeline(selfie).segment(big)
    from bgkit.pipeline.pipeline import check_memory

    monkeypatch.delenv("BGKIT_MAX_PIXELS")
    monkeypatch.setattr("bgkit.pipeline.pipeline._available_bytes", lambda: 2 << 30)  # a 2 GiB machine
    with pytest.raises(bgkit.MemoryBudgetError, match=r"bokeh effect needs about 5.4 GiB.*2.0 GiB"):
        check_memory(6000, 8000, bgkit.EffectSettings(effect="bokeh"))
    check_memory(6000, 8000, bgkit.EffectSettings(effect="bokeh"), max_pixels=64_000_000)  # told to try anyway
    monkeypatch.setattr("bgkit.pipeline.pipeline._available_bytes", lambda: 1 / 0)  # a camera frame: never read
    check_memory(480, 640, bgkit.EffectSettings(effect="bokeh"))
